# web/: static files served by the coordinator (installed under pkgdatadir/web).
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/app.js web/style.css

# web/: static files served by the coordinator (installed under pkgdatadir/web).
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/style.css \
	web/common.js \
	web/leaderboard.html web/leaderboard.js \
	web/model.html web/model.js \
	web/heatmap.html web/heatmap.js \
	web/monitor.css web/jobs.html web/jobs.js web/items.html web/items.js \
	web/schedules.html web/schedules.js \
	web/series.html web/series.js web/regress.js

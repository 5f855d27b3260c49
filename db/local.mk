# db/: the SQLite store (schema, migrations, queries).
noinst_LTLIBRARIES += libpbdb.la
libpbdb_la_SOURCES = db/store.h db/store_int.h db/store_sql.h db/schema_sql.h \
	db/store.c db/store_jobs.c db/store_tasks.c db/store_admin.c db/checkpoint.c \
	db/store_datasets.c db/store_series.c db/store_regress.c
libpbdb_la_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(JANSSON_CFLAGS)
libpbdb_la_LIBADD = libpbcommon.la $(SQLITE_LIBS)
EXTRA_DIST += db/schema.sql db/migration_2.sql db/migration_3.sql db/migration_4.sql \
	db/migration_5.sql
BUILT_SOURCES += db/schema_sql.h
# BUILT_SOURCES covers "make all/check" only; building the library target
# alone (make libpbdb.la) needs the header first too.
$(libpbdb_la_OBJECTS): db/schema_sql.h
CLEANFILES += db/schema_sql.h
# The .sql files are the source of truth; each is embedded as a C string
# (schema.sql as pdb_schema_sql, migration_N.sql as pdb_migration_N_sql).
db/schema_sql.h: $(srcdir)/db/schema.sql $(srcdir)/db/migration_2.sql \
		$(srcdir)/db/migration_3.sql $(srcdir)/db/migration_4.sql \
		$(srcdir)/db/migration_5.sql
	$(AM_V_GEN)mkdir -p db && { echo '/* generated from db/schema.sql and db/migration_*.sql */'; \
	  for f in schema migration_2 migration_3 migration_4 migration_5; do \
	    echo "static const char pdb_$${f}_sql[] ="; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $(srcdir)/db/$$f.sql; \
	    echo ';'; \
	  done; } > $@

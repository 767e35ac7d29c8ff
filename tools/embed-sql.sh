#!/bin/sh
# Turn the sql/NNN_name.sql migrations into a C array (schema.c applies them
# in order). Usage: embed-sql.sh FILE...
set -eu
echo '/* Generated from the sql directory at build time. Do not edit. */'
echo '#include "schema.h"'
echo 'const struct schema_migration schema_migrations[] = {'
for f in "$@"; do
	base=$(basename "$f" .sql)
	version=$(echo "$base" | sed 's/^0*\([0-9][0-9]*\)_.*/\1/')
	printf '\t{%s, "%s",\n' "$version" "$base"
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t "/' -e 's/$/\\n"/' "$f"
	printf '\t},\n'
done
echo '};'
echo 'const unsigned schema_nmigrations = sizeof(schema_migrations) / sizeof(schema_migrations[0]);'

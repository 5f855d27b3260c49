/* What build this is: the package version and the git commit it was built
 * from ("unknown" outside a git checkout, "-dirty" with uncommitted changes),
 * recorded with every result so a series can say which commits lie
 * between two runs. */
#ifndef PB_VERSION_H
#define PB_VERSION_H

const char *pb_version(void);
const char *pb_git_commit(void);

#endif

/* version.h - the release number, shown by `invsync --version` and sent in
 * the User-Agent header. */
#ifndef INVSYNC_VERSION_H
#define INVSYNC_VERSION_H

#define INVSYNC_VERSION "0.1.0"

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * access - what a principal may do, from the access groups in the cache.
 *
 * An AccessGroup lists members (Persons), applications, and permissions:
 * {"collection": "persons", "rights": ["read", ...], "dbid": n}.  Without
 * dbid a permission covers the whole collection; with it, one object.  A
 * principal's rights are the union over the groups it belongs to.  The
 * admin token may do everything.
 */
#ifndef TENANTD_ACCESS_H
#define TENANTD_ACCESS_H

#include <jansson.h>

#include "auth.h"
#include "schema.h"

enum right {
	RIGHT_READ = 1,
	RIGHT_CREATE = 2,
	RIGHT_UPDATE = 4,
	RIGHT_DELETE = 8,
};

struct grant {
	json_int_t	 dbid;
	int		 rights;
};

struct grants {
	int		 admin;
	int		 collection[CFG_NTYPES];	/* rights on all */
	struct grant	*objects[CFG_NTYPES];		/* rights on one */
	size_t		 nobjects[CFG_NTYPES];
};

void	 access_grants(const struct principal *, struct grants *);
void	 access_clear(struct grants *);
int	 access_can(const struct grants *, enum cfg_kind, json_int_t dbid,
	    int right);
/* May it read some objects of kind (a list may then be non-empty)? */
int	 access_any(const struct grants *, enum cfg_kind, int right);
json_t	*access_describe(const struct grants *);
const char *access_right_name(int right);

#endif

/* The web view (…/ui/): read-only HTML pages of a repository's states, a state's resources and
 * versions, and a version's download. Rendered from what the core returns; nothing here
 * changes a repository. */
#ifndef TFGIT_UI_H
#define TFGIT_UI_H

#include "request.h"
#include "../core/settings.h"

/* …/ui/: every state of the branch the requester may read, with its last change and lock. */
void ui_repository(struct request *req, const struct settings *cfg);
/* …/ui/state: one state's resources, outputs' names and versions with their changes. */
void ui_state(struct request *req, const struct settings *cfg);
/* …/ui/version: a version's JSON as a download. */
void ui_version(struct request *req, const struct settings *cfg);
/* …/ui/style.css */
void ui_style(struct request *req, const struct settings *cfg);
/* …/ui (no slash): to …/ui/, where the pages' relative links work. */
void ui_redirect(struct request *req, const struct settings *cfg);

#endif

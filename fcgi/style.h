/* The web view's stylesheet, compiled in (style.c). */
#ifndef TFGIT_STYLE_H
#define TFGIT_STYLE_H

extern const char ui_stylesheet[];

#endif

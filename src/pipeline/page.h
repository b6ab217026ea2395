/*
 * page.h - one document page end to end (dots_page_parse, public); the
 * state accessors it needs from run.c.
 */
#ifndef DOTS_PAGE_H
#define DOTS_PAGE_H

#include "pipeline/run.h"

#endif

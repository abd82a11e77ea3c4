/* template.h - the URL templates of the config: {version}, {group} and the like, expanded. */
#ifndef ASG_TEMPLATE_H
#define ASG_TEMPLATE_H

/*
 * Expand {name} from vars (a { NULL, NULL }-terminated list of name, value;
 * a NULL value is "not known yet"); values are percent-encoded when encode,
 * except {url}. Returns the expansion, or NULL with a cause.
 */
char	*tmpl_expand(const char *, const char *const vars[][2], int encode, char **);

#endif

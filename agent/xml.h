/* xml.h - AWS Query API responses parsed with expat into a small read-only tree. */
#ifndef ASG_XML_H
#define ASG_XML_H

#include <stddef.h>

struct xml_node {
	char		*name;
	char		*text;		/* character data directly inside, never NULL */
	struct xml_node	*parent;
	struct xml_node	*child;		/* first child */
	struct xml_node	*next;		/* next sibling */
};

int	xml_parse(const char *, size_t, struct xml_node **, char **);
void	xml_free(struct xml_node *);
/* The first direct child with this name, or NULL. */
struct xml_node *xml_child(const struct xml_node *, const char *);
/* The next sibling with the same name, or NULL. */
struct xml_node *xml_next(const struct xml_node *);
/* The first element with this name below node (depth first), or NULL. */
struct xml_node *xml_find(const struct xml_node *, const char *);
/* Text of xml_child(node, name), or NULL. */
const char *xml_child_text(const struct xml_node *, const char *);
/* Text of xml_find(node, name), or NULL. */
const char *xml_find_text(const struct xml_node *, const char *);

#endif

/* xml.c - AWS Query API responses parsed with expat into a small read-only tree. */
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "util.h"
#include "xml.h"

#define XML_MAX_DEPTH	64
#define XML_MAX_NODES	200000

struct parse_ctx {
	XML_Parser	 parser;
	struct xml_node	*root;
	struct xml_node	*cur;
	struct xml_node	*last[XML_MAX_DEPTH + 1];	/* last child of the open element at each depth */
	struct buf	 text[XML_MAX_DEPTH + 1];	/* text of the open element at each depth */
	int		 depth;
	size_t		 nodes;
	const char	*error;
};

static void XMLCALL
on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct parse_ctx	*ctx = arg;
	struct xml_node		*n;

	/* Expat may still call back after XML_StopParser: nothing more is taken. */
	if (ctx->error != NULL)
		return;
	if (++ctx->depth > XML_MAX_DEPTH || ++ctx->nodes > XML_MAX_NODES) {
		ctx->error = "document too deep or too large";
		XML_StopParser(ctx->parser, XML_FALSE);
		return;
	}
	buf_reset(&ctx->text[ctx->depth]);
	n = xcalloc(1, sizeof *n);
	n->name = xstrdup(name);
	n->text = xstrdup("");
	n->parent = ctx->cur;
	/* Appended through the depth's last child: no walk down the siblings. */
	if (ctx->cur == NULL)
		ctx->root = n;
	else if (ctx->last[ctx->depth - 1] != NULL)
		ctx->last[ctx->depth - 1]->next = n;
	else
		ctx->cur->child = n;
	ctx->last[ctx->depth - 1] = n;
	ctx->last[ctx->depth] = NULL;
	ctx->cur = n;
}

static void XMLCALL
on_end(void *arg, const XML_Char *name)
{
	struct parse_ctx	*ctx = arg;

	if (ctx->error != NULL)
		return;
	/* All the character data directly inside, joined once. */
	if (ctx->cur != NULL && ctx->text[ctx->depth].len > 0) {
		free(ctx->cur->text);
		ctx->cur->text = xstrdup(ctx->text[ctx->depth].data);
	}
	ctx->depth--;
	if (ctx->cur != NULL)
		ctx->cur = ctx->cur->parent;
}

static void XMLCALL
on_text(void *arg, const XML_Char *s, int len)
{
	struct parse_ctx	*ctx = arg;

	if (ctx->error == NULL && ctx->cur != NULL)
		buf_add(&ctx->text[ctx->depth], s, (size_t)len);
}

/* Refuse DTDs outright: AWS never sends one, and entities are an attack surface. */
static void XMLCALL
on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal_subset)
{
	struct parse_ctx	*ctx = arg;

	ctx->error = "document type declarations are not accepted";
	XML_StopParser(ctx->parser, XML_FALSE);
}

int
xml_parse(const char *data, size_t len, struct xml_node **out, char **cause)
{
	struct parse_ctx	ctx;
	size_t			i;
	int			ret = -1;

	*out = NULL;
	memset(&ctx, 0, sizeof ctx);
	if (len > 0x7fffffff)
		return set_cause(cause, "XML document too large");
	if ((ctx.parser = XML_ParserCreate("UTF-8")) == NULL)
		fatal("out of memory");
	XML_SetUserData(ctx.parser, &ctx);
	XML_SetElementHandler(ctx.parser, on_start, on_end);
	XML_SetCharacterDataHandler(ctx.parser, on_text);
	XML_SetStartDoctypeDeclHandler(ctx.parser, on_doctype);
	if (XML_Parse(ctx.parser, data, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (ctx.error != NULL)
			set_cause(cause, "bad XML: %s", ctx.error);
		else
			set_cause(cause, "bad XML at line %lu: %s",
			    (unsigned long)XML_GetCurrentLineNumber(ctx.parser),
			    XML_ErrorString(XML_GetErrorCode(ctx.parser)));
		goto out;
	}
	if (ctx.root == NULL) {
		set_cause(cause, "bad XML: no element");
		goto out;
	}
	*out = ctx.root;
	ctx.root = NULL;
	ret = 0;
out:
	xml_free(ctx.root);
	for (i = 0; i < nitems(ctx.text); i++)
		buf_free(&ctx.text[i]);
	XML_ParserFree(ctx.parser);
	return ret;
}

void
xml_free(struct xml_node *n)
{
	struct xml_node	*next;

	while (n != NULL) {
		next = n->next;
		xml_free(n->child);
		free(n->name);
		free(n->text);
		free(n);
		n = next;
	}
}

struct xml_node *
xml_child(const struct xml_node *n, const char *name)
{
	struct xml_node	*c;

	if (n == NULL)
		return NULL;
	for (c = n->child; c != NULL; c = c->next) {
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

struct xml_node *
xml_next(const struct xml_node *n)
{
	struct xml_node	*c;

	for (c = n->next; c != NULL; c = c->next) {
		if (strcmp(c->name, n->name) == 0)
			return c;
	}
	return NULL;
}

struct xml_node *
xml_find(const struct xml_node *n, const char *name)
{
	struct xml_node	*c, *found;

	if (n == NULL)
		return NULL;
	for (c = n->child; c != NULL; c = c->next) {
		if (strcmp(c->name, name) == 0)
			return c;
		if ((found = xml_find(c, name)) != NULL)
			return found;
	}
	return NULL;
}

const char *
xml_child_text(const struct xml_node *n, const char *name)
{
	struct xml_node	*c;

	return (c = xml_child(n, name)) != NULL ? c->text : NULL;
}

const char *
xml_find_text(const struct xml_node *n, const char *name)
{
	struct xml_node	*c;

	return (c = xml_find(n, name)) != NULL ? c->text : NULL;
}

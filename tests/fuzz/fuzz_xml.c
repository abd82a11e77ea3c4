/*
 * fuzz_xml.c - the AWS Query API answer path: xml_parse, then what the agent
 * reads from the tree (aws_parse_error, tags_parse_ec2, tags_parse_autoscaling,
 * the DescribeAutoScalingInstances and lifecycle lookups).
 *
 * Input: the HTTP body as AWS would send it.
 * Checks: a tree comes back exactly on success; the tree is well formed
 * (parent links, depth limit, text never NULL); every tag has a key and a value.
 */
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "tags.h"
#include "util.h"
#include "xml.h"

#include "fuzz.h"

#define MAX_DEPTH	64	/* xml.c's XML_MAX_DEPTH */

static size_t
check_tree(const struct xml_node *n, const struct xml_node *parent, int depth)
{
	size_t	count = 0;

	for (; n != NULL; n = n->next) {
		FUZZ_CHECK(depth <= MAX_DEPTH, "node at depth %d", depth);
		FUZZ_CHECK(n->parent == parent, "bad parent link");
		FUZZ_CHECK(n->name != NULL && n->text != NULL, "NULL name or text");
		count += 1 + check_tree(n->child, n, depth + 1);
	}
	return count;
}

static void
check_tags(const struct tags *t)
{
	size_t	i;

	FUZZ_CHECK(t->n == 0 || t->v != NULL, "tags without storage");
	for (i = 0; i < t->n; i++) {
		FUZZ_CHECK(t->v[i].key != NULL && t->v[i].value != NULL, "tag %zu", i);
		/* tags_get finds the first of a key, whatever came before. */
		FUZZ_CHECK(tags_get(t, t->v[i].key) != NULL, "tag %zu not found", i);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct xml_node	*root = NULL, *m;
	struct tags	 t;
	const char	*s;
	char		*cause = NULL, *code = NULL, *msg = NULL, *rid = NULL;
	int		 r;

	r = xml_parse((const char *)data, len, &root, &cause);
	if (r != 0) {
		FUZZ_CHECK(r == -1 && root == NULL && cause != NULL, "failure without cause");
		free(cause);
		return 0;
	}
	FUZZ_CHECK(root != NULL && cause == NULL, "success without a tree");
	FUZZ_CHECK(root->next == NULL, "two roots");
	check_tree(root, NULL, 1);

	if (aws_parse_error(root, &code, &msg, &rid) == 0) {
		FUZZ_CHECK(code != NULL && msg != NULL, "error without code or message");
		(void)aws_is_throttle(code);
		free(code);
		free(msg);
		free(rid);
	}

	memset(&t, 0, sizeof t);
	tags_parse_ec2(root, &t);
	check_tags(&t);
	tags_free(&t);

	memset(&t, 0, sizeof t);
	tags_parse_autoscaling(root, &t);
	check_tags(&t);
	tags_free(&t);

	/* What tags_instance_group and the lifecycle code read. */
	m = xml_child(xml_find(root, "AutoScalingInstances"), "member");
	if (m != NULL) {
		s = xml_child_text(m, "AutoScalingGroupName");
		s = xml_child_text(m, "LifecycleState");
		(void)s;
	}
	for (m = xml_child(xml_find(root, "LifecycleHooks"), "member"); m != NULL;
	    m = xml_next(m)) {
		(void)xml_child_text(m, "LifecycleHookName");
		(void)xml_child_text(m, "LifecycleTransition");
		(void)xml_child_text(m, "HeartbeatTimeout");
	}
	(void)xml_find_text(root, "RequestId");
	xml_free(root);
	return 0;
}

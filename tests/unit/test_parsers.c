/* test_parsers.c - AWS XML answers, IMDS credential JSON, ISO times. */
#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "creds.h"
#include "tap.h"
#include "util.h"
#include "xml.h"

static void
test_ec2_tags(void)
{
	const char	*doc =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<DescribeTagsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
	    "<requestId>r-1</requestId><tagSet>"
	    "<item><resourceId>i-1</resourceId><resourceType>instance</resourceType>"
	    "<key>asg-agent:version</key><value>1.2.3</value></item>"
	    "<item><resourceId>i-1</resourceId><key>aws:autoscaling:groupName</key>"
	    "<value>blue &amp; green</value></item>"
	    "</tagSet></DescribeTagsResponse>";
	struct xml_node	*root = NULL, *set, *item;
	char		*cause = NULL;
	int		 n = 0;

	tap_int(xml_parse(doc, strlen(doc), &root, &cause), 0, "EC2 DescribeTags parses");
	set = xml_find(root, "tagSet");
	for (item = xml_child(set, "item"); item != NULL; item = xml_next(item))
		n++;
	tap_int(n, 2, "two tag items");
	item = xml_child(set, "item");
	tap_str(xml_child_text(item, "key"), "asg-agent:version", "first key");
	tap_str(xml_child_text(xml_next(item), "value"), "blue & green",
	    "entities decoded");
	tap_null(xml_child_text(item, "missing"), "missing child is NULL");
	xml_free(root);
	free(cause);
}

static void
test_errors(void)
{
	const char	*ec2 = "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
	    "<Message>Request limit exceeded.</Message></Error></Errors>"
	    "<RequestID>abc-1</RequestID></Response>";
	const char	*as = "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/"
	    "doc/2011-01-01/\"><Error><Type>Sender</Type><Code>ValidationError</Code>"
	    "<Message>No active Lifecycle Action found</Message></Error>"
	    "<RequestId>rid-2</RequestId></ErrorResponse>";
	const char	*s3 = "<Error><Code>SlowDown</Code><Message>Please reduce"
	    "</Message><RequestId>s3-3</RequestId></Error>";
	struct xml_node	*root = NULL;
	char		*code = NULL, *msg = NULL, *rid = NULL;

	xml_parse(ec2, strlen(ec2), &root, NULL);
	tap_int(aws_parse_error(root, &code, &msg, &rid), 0, "EC2 error found");
	tap_str(code, "RequestLimitExceeded", "EC2 code");
	tap_str(msg, "Request limit exceeded.", "EC2 message");
	tap_str(rid, "abc-1", "EC2 request id");
	tap_true(aws_is_throttle(code), "RequestLimitExceeded is throttling");
	xml_free(root);
	free(code); free(msg); free(rid);

	xml_parse(as, strlen(as), &root, NULL);
	tap_int(aws_parse_error(root, &code, &msg, &rid), 0, "Auto Scaling error found");
	tap_str(code, "ValidationError", "Auto Scaling code");
	tap_str(rid, "rid-2", "Auto Scaling request id");
	tap_true(!aws_is_throttle(code), "ValidationError is not throttling");
	xml_free(root);
	free(code); free(msg); free(rid);

	xml_parse(s3, strlen(s3), &root, NULL);
	tap_int(aws_parse_error(root, &code, &msg, &rid), 0, "S3 error found");
	tap_str(code, "SlowDown", "S3 code");
	tap_true(aws_is_throttle(code), "SlowDown is throttling");
	xml_free(root);
	free(code); free(msg); free(rid);

	root = NULL;
	tap_int(xml_parse("<a><b>ok</b></a>", 16, &root, NULL), 0, "a document without an error "
	    "parses");
	tap_int(aws_parse_error(root, &code, &msg, &rid), -1, "no error element, no error");
	xml_free(root);
}

static void
test_bad_xml(void)
{
	const char	*bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
	    "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><a>&lol2;</a>";
	struct xml_node	*root = NULL;
	char		*cause = NULL, *deep;
	struct buf	 b = { NULL, 0, 0 };
	int		 i;

	tap_int(xml_parse("<a><b></a>", 10, &root, &cause), -1, "mismatched tags rejected");
	tap_null(root, "and no tree is returned");
	tap_has(cause, "bad XML", "cause says bad XML");
	tap_int(xml_parse("", 0, &root, &cause), -1, "empty document rejected");
	tap_int(xml_parse(bomb, strlen(bomb), &root, &cause), -1, "DTD with entities rejected");
	tap_has(cause, "document type", "the cause names the document type");
	for (i = 0; i < 100; i++)
		buf_adds(&b, "<x>");
	deep = buf_take(&b);
	tap_int(xml_parse(deep, strlen(deep), &root, &cause), -1, "100 levels deep rejected");
	free(deep);
	free(cause);
}

static void
test_creds_json(void)
{
	struct creds	 c;
	char		*cause = NULL;
	const char	*good = "{\"Code\":\"Success\",\"LastUpdated\":\"2026-11-22T10:00:00Z\","
	    "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAEXAMPLE\",\"SecretAccessKey\":"
	    "\"sekrit\",\"Token\":\"tok\",\"Expiration\":\"2026-11-22T16:00:00Z\"}";

	tap_int(creds_parse_imds(good, &c, &cause), 0, "role credentials parse");
	tap_str(c.access_key_id, "ASIAEXAMPLE", "access key id");
	tap_str(c.secret_access_key, "sekrit", "secret");
	tap_str(c.session_token, "tok", "token");
	tap_dbl(c.expiration, 1795363200.0, 0, "expiration as epoch seconds");
	creds_clear(&c);
	tap_int(creds_parse_imds("{\"Code\":\"AssumeRoleUnauthorizedAccess\"}", &c,
	    &cause), -1, "a failure Code is refused");
	tap_has(cause, "AssumeRoleUnauthorizedAccess", "failure Code reported");
	tap_int(creds_parse_imds("{\"AccessKeyId\":\"A\"}", &c, &cause), -1,
	    "missing secret rejected");
	tap_int(creds_parse_imds("[1,2]", &c, &cause), -1, "non-object rejected");
	tap_int(creds_parse_imds("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\","
	    "\"Expiration\":\"tomorrow\"}", &c, &cause), -1, "bad expiration rejected");
	tap_dbl(creds_parse_time("2026-11-22T16:00:00.123Z"), 1795363200.0, 0,
	    "fractional seconds accepted");
	tap_dbl(creds_parse_time("2026-11-22 16:00"), -1, 0, "malformed time rejected");
	free(cause);
}

int
main(void)
{
	tap_run("EC2 tags", test_ec2_tags);
	tap_run("AWS errors", test_errors);
	tap_run("bad XML", test_bad_xml);
	tap_run("IMDS credentials", test_creds_json);
	return tap_done();
}

/* test_manifest.c - the chunk manifest's parser: the format, and a named case for every refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

#include "tap.h"

#define H0 "0000000000000000000000000000000000000000000000000000000000000000"
#define HA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEAD(size, cs) "asg-agent-manifest 1\nsize " size "\nchunk-size " cs "\nsha256 " HA "\n"

static void
parses(const char *text, long long size, long long cs, size_t n, const char *name)
{
	struct manifest	 m;
	char		*cause = NULL;

	if (!tap_int(manifest_parse(text, strlen(text), &m, &cause), 0, "%s: parses", name))
		tap_diag("  cause: %s", cause);
	tap_ll(m.size, size, "%s: size", name);
	tap_ll(m.chunk_size, cs, "%s: chunk-size", name);
	tap_size(m.nchunks, n, "%s: chunk count", name);
	manifest_free(&m);
	free(cause);
}

static void
refuses(const char *text, size_t len, const char *want, const char *name)
{
	struct manifest	 m;
	char		*cause = NULL;

	tap_int(manifest_parse(text, len, &m, &cause), -1, "%s: refused", name);
	tap_has(cause, want, "%s: the cause says why", name);
	tap_null(m.chunks, "%s: nothing kept", name);
	free(cause);
}

#define REFUSES(text, want, name)	refuses(text, strlen(text), want, name)

static void
test_parses(void)
{
	struct manifest	 m;
	const char	*t = HEAD("65537", "65536") "chunk " HA "\nchunk " HB "\n";
	char		*cause = NULL;

	parses(t, 65537, 65536, 2, "two chunks, the last of one byte");
	parses(HEAD("0", "65536"), 0, 65536, 0, "an empty artifact has no chunk lines");
	parses(HEAD("131072", "65536") "chunk " HA "\nchunk " HB "\n", 131072, 65536, 2,
	    "an exact multiple of chunk-size");
	parses(HEAD("67108864", "67108864") "chunk " HA "\n", 67108864, 67108864, 1,
	    "the largest chunk-size, 64 MiB");
	manifest_parse(t, strlen(t), &m, &cause);
	tap_ll(manifest_chunk_len(&m, 0), 65536, "chunk 0 is chunk-size long");
	tap_ll(manifest_chunk_len(&m, 1), 1, "the last chunk is what is left");
	tap_int(manifest_chunk(&m, 1)[31], 0xbb, "chunk 1's digest is kept");
	tap_int(m.sha256[0], 0xaa, "the whole artifact's digest is kept");
	manifest_free(&m);
	manifest_free(NULL);
	free(cause);
}

static void
test_refuses(void)
{
	static char	big[MANIFEST_MAX + 2];

	REFUSES("", "ends after line 0", "an empty file");
	REFUSES("asg-agent-manifest 2\n", "not an asg-agent-manifest 1", "an unknown version");
	REFUSES("tar-manifest 1\n", "not an asg-agent-manifest 1", "an unknown first line");
	REFUSES("asg-agent-manifest 1", "does not end with LF", "no LF at the end of a line");
	REFUSES("asg-agent-manifest 1\r\nsize 0\r\n", "not an asg-agent-manifest 1",
	    "CR LF line ends");
	REFUSES("asg-agent-manifest 1\nchunk-size 65536\nsize 0\nsha256 " HA "\n",
	    "expected 'size'", "keys out of order");
	REFUSES("asg-agent-manifest 1\nsize 0\nsize 0\n", "expected 'chunk-size'",
	    "a repeated key");
	REFUSES("asg-agent-manifest 1\nsize 0\nchunk-size 65536\n", "ends after line 3",
	    "a missing key (sha256)");
	REFUSES("asg-agent-manifest 1\nsize 0\nchunk-size 65536\nmd5 " HA "\n",
	    "expected 'sha256'", "an unknown key");
	REFUSES(HEAD("-1", "65536"), "bad size", "a negative size");
	REFUSES(HEAD("+1", "65536"), "bad size", "a size with a sign");
	REFUSES(HEAD("01", "65536"), "bad size", "a size with a leading zero");
	REFUSES(HEAD("1 ", "65536"), "bad size", "a size with trailing blanks");
	REFUSES(HEAD("9999999999999999999", "65536"), "bad size", "a size that overflows");
	REFUSES("asg-agent-manifest 1\nsize\n", "expected 'size'", "a key without a value");
	REFUSES(HEAD("0", "32768"), "power of two", "chunk-size under 64 KiB");
	REFUSES(HEAD("0", "134217728"), "power of two", "chunk-size over 64 MiB");
	REFUSES(HEAD("0", "100000"), "power of two", "chunk-size not a power of two");
	REFUSES("asg-agent-manifest 1\nsize 0\nchunk-size 65536\nsha256 "
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	    "sha256 is not 64 lower-case hex", "an upper-case sha256");
	REFUSES("asg-agent-manifest 1\nsize 0\nchunk-size 65536\nsha256 aaaa\n",
	    "sha256 is not 64 lower-case hex", "a short sha256");
	REFUSES(HEAD("65537", "65536") "chunk " HA "\nchunk "
	    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n",
	    "chunk digest is not 64 lower-case hex", "an upper-case chunk digest");
	REFUSES(HEAD("65537", "65536") "chunk " HA "\nchunk " H0 "0\n",
	    "chunk digest is not 64 lower-case hex", "a long chunk digest");
	REFUSES(HEAD("65537", "65536") "chunk " HA "\n" "chunk " HA "\n" "chunk " HA "\n",
	    "trailing bytes", "too many chunk lines");
	REFUSES(HEAD("200000", "65536") "chunk " HA "\nchunk " HA "\nchunk " HA "\n",
	    "3 chunks listed, 4 expected", "too few chunk lines");
	REFUSES(HEAD("1000000000000", "65536") "chunk " HA "\n", "more than",
	    "a size whose chunks could never fit in the file");
	REFUSES(HEAD("0", "65536") "\n", "trailing bytes", "a blank line at the end");
	REFUSES(HEAD("1", "65536") "chunk " HA "\ngarbage", "trailing bytes",
	    "trailing garbage");
	REFUSES(HEAD("1", "65536") "chunk  " HA "\n", "chunk digest is not",
	    "two blanks after a key");
	refuses(HEAD("1", "65536") "chunk " HA "\0\n", sizeof(HEAD("1", "65536") "chunk "
	    HA "\0\n") - 1, "chunk digest is not", "a NUL byte in a line");
	memset(big, 'a', sizeof big);
	refuses(big, sizeof big, "larger than", "a file over 1 MiB");
}

int
main(void)
{
	tap_run("parses", test_parses);
	tap_run("refuses", test_refuses);
	return tap_done();
}

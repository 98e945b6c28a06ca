/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_tls - common/tls.c with certificates made here in memory: a port's
 * context and what is wrong with its files (which key, why); the
 * handshake and the record I/O over a socket pair against a client SSL:
 * bodies of many records read whole with nothing left inside OpenSSL
 * after each read, a write into a full socket resumed (its buffer grown
 * meanwhile) with every byte in order, the end of the stream with and
 * without close_notify; the client context for a link to our own port,
 * which the port takes under mutual TLS.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "tls.h"

struct fx {
	char	dir[64];
	char	cert[128], key[128], other_key[128], ca[128], empty[128];
	char	client_cert[128], client_key[128];
};

/* new_key - a P-256 key */
static EVP_PKEY *
new_key(void)
{
	EVP_PKEY	*k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* new_cert - a certificate for key, signed by signer (self when NULL) */
static X509 *
new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *signer)
{
	X509	*x = X509_new();

	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)random());
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) :
	    X509_get_subject_name(x));
	assert_true(X509_sign(x, signer != NULL ? signer : key,
	    EVP_sha256()) > 0);
	return x;
}

static void
write_cert(const char *path, X509 *x)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
}

static void
write_key(const char *path, EVP_PKEY *k)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(f);
}

static int
setup(void **state)
{
	struct fx	*fx = calloc(1, sizeof(*fx));
	EVP_PKEY	*k, *k2, *cak, *ck;
	X509		*x, *ca, *cx;
	FILE		*f;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_tls.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->cert, sizeof(fx->cert), "%s/cert.pem", fx->dir);
	snprintf(fx->key, sizeof(fx->key), "%s/key.pem", fx->dir);
	snprintf(fx->other_key, sizeof(fx->other_key), "%s/other.pem", fx->dir);
	snprintf(fx->ca, sizeof(fx->ca), "%s/ca.pem", fx->dir);
	snprintf(fx->empty, sizeof(fx->empty), "%s/empty.pem", fx->dir);
	snprintf(fx->client_cert, sizeof(fx->client_cert), "%s/cc.pem",
	    fx->dir);
	snprintf(fx->client_key, sizeof(fx->client_key), "%s/ck.pem", fx->dir);
	k = new_key();
	k2 = new_key();
	cak = new_key();
	ck = new_key();
	x = new_cert(k, "server", NULL, NULL);
	ca = new_cert(cak, "client-ca", NULL, NULL);
	cx = new_cert(ck, "client", ca, cak);
	write_cert(fx->cert, x);
	write_key(fx->key, k);
	write_key(fx->other_key, k2);
	write_cert(fx->ca, ca);
	write_cert(fx->client_cert, cx);
	write_key(fx->client_key, ck);
	assert_non_null(f = fopen(fx->empty, "w"));
	fclose(f);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ck);
	X509_free(x);
	X509_free(ca);
	X509_free(cx);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx	*fx = *state;
	char		 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* ctx_of - tls_ctx_new on these files; which/why for a failure */
static struct ssl_ctx_st *
ctx_of(const char *cert, const char *key, const char *ca, const char **which,
    char *why)
{
	struct conf_tls	t = { (char *)cert, (char *)key, (char *)ca, NULL };

	why[0] = '\0';
	return tls_ctx_new(&t, which, why, TLS_ERR_MAX);
}

static void
test_files(void **state)
{
	struct fx		*fx = *state;
	struct ssl_ctx_st	*ctx;
	const char		*which;
	char			 why[TLS_ERR_MAX];

	ctx = ctx_of(fx->cert, fx->key, NULL, &which, why);
	assert_non_null(ctx);
	assert_null(which);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	tls_ctx_free(ctx);
	ctx = ctx_of(fx->cert, fx->key, fx->ca, &which, why);
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	tls_ctx_free(ctx);

	assert_null(ctx_of("/nonexistent/c.pem", fx->key, NULL, &which, why));
	assert_string_equal(which, "cert_file");
	assert_non_null(strstr(why, "No such file or directory"));
	assert_null(ctx_of(fx->empty, fx->key, NULL, &which, why));
	assert_string_equal(which, "cert_file");
	assert_non_null(strstr(why, "holds no PEM certificate"));
	assert_null(ctx_of(fx->cert, fx->other_key, NULL, &which, why));
	assert_string_equal(which, "key_file");
	assert_non_null(strstr(why, "does not match the certificate"));
	assert_null(ctx_of(fx->cert, fx->cert, NULL, &which, why));
	assert_string_equal(which, "key_file");
	assert_non_null(strstr(why, "holds no PEM private key"));
	assert_null(ctx_of(fx->cert, fx->key, fx->key, &which, why));
	assert_string_equal(which, "client_ca_file");
	assert_non_null(strstr(why, "holds no PEM certificate"));
	/* nothing left behind to confuse the next SSL_get_error */
	assert_int_equal(ERR_peek_error(), 0);
}

/* A server SSL through tls.c and a client SSL, on a socket pair. */
struct pair {
	struct ssl_ctx_st	*sctx;
	SSL_CTX			*cctx;
	SSL			*srv, *cl;
	int			 sv[2];
};

static void
pair_open(struct pair *p, struct ssl_ctx_st *sctx, SSL_CTX *cctx)
{
	int	want_write, s_done = 0, c_done = 0, i, r;
	char	why[TLS_ERR_MAX];

	memset(p, 0, sizeof(*p));
	p->sctx = sctx;
	p->cctx = cctx;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->sv), 0);
	fcntl(p->sv[0], F_SETFL, O_NONBLOCK);
	fcntl(p->sv[1], F_SETFL, O_NONBLOCK);
	p->srv = tls_accept_new(sctx, p->sv[0]);
	assert_non_null(p->cl = SSL_new(cctx));
	SSL_set_fd(p->cl, p->sv[1]);
	SSL_set_connect_state(p->cl);
	for (i = 0; i < 100 && (!s_done || !c_done); i++) {
		if (!c_done) {
			r = SSL_do_handshake(p->cl);
			c_done = r == 1;
		}
		if (!s_done) {
			r = tls_handshake(p->srv, &want_write, why, sizeof(why));
			assert_int_not_equal(r, -1);
			s_done = r == 1;
		}
	}
	assert_true(s_done && c_done);
}

static void
pair_close(struct pair *p)
{
	tls_free(p->srv);
	SSL_free(p->cl);
	close(p->sv[0]);
	close(p->sv[1]);
	tls_ctx_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX	*c = SSL_CTX_new(TLS_client_method());

	assert_non_null(c);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

static struct ssl_ctx_st *
server_ctx(struct fx *fx, const char *ca)
{
	const char	*which;
	char		 why[TLS_ERR_MAX];
	struct ssl_ctx_st *ctx = ctx_of(fx->cert, fx->key, ca, &which, why);

	assert_non_null(ctx);
	return ctx;
}

static void
fill(unsigned char *b, size_t n, size_t from)
{
	size_t	i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)((from + i) * 7 + (from + i) / 251);
}

static void
test_read_whole_records(void **state)
{
	struct pair	 p;
	struct evbuffer	*in = evbuffer_new();
	unsigned char	*want, chunk[30000];
	size_t		 total = 300000, sent = 0;
	ssize_t		 n;
	int		 r, want_write, reads = 0;

	pair_open(&p, server_ctx(*state, NULL), client_ctx());
	want = malloc(total);
	fill(want, total, 0);
	while (evbuffer_get_length(in) < total) {
		/* records of odd sizes, many of them to a read */
		while (sent < total) {
			size_t len = total - sent < sizeof(chunk) ?
			    total - sent : sizeof(chunk) - (sent % 977);

			memcpy(chunk, want + sent, len);
			if ((r = SSL_write(p.cl, chunk, (int)len)) <= 0) {
				assert_int_equal(SSL_get_error(p.cl, r),
				    SSL_ERROR_WANT_WRITE);
				break;
			}
			sent += (size_t)r;
		}
		n = tls_read(p.srv, in, 65536, &want_write);
		assert_true(n > 0 || (n == -1 && errno == EAGAIN));
		assert_int_equal(want_write, 0);
		/* what OpenSSL decrypted is all in the buffer */
		assert_int_equal(SSL_pending(p.srv), 0);
		if (n > 0)
			assert_true((size_t)n < 65536 + 16384);
		reads++;
	}
	assert_int_equal(evbuffer_get_length(in), total);
	assert_memory_equal(evbuffer_pullup(in, -1), want, total);
	/* nothing more: EAGAIN, not an error */
	assert_int_equal(tls_read(p.srv, in, 65536, &want_write), -1);
	assert_int_equal(errno, EAGAIN);
	/* close_notify: the end */
	assert_true(SSL_shutdown(p.cl) >= 0);
	assert_int_equal(tls_read(p.srv, in, 65536, &want_write), 0);
	free(want);
	evbuffer_free(in);
	pair_close(&p);
}

static void
test_write_resumes(void **state)
{
	struct pair	 p;
	struct evbuffer	*out = evbuffer_new();
	unsigned char	*want, *got;
	size_t		 total = 1500000, queued, have = 0, written = 0;
	ssize_t		 n;
	int		 r, blocked = 0;

	pair_open(&p, server_ctx(*state, NULL), client_ctx());
	want = malloc(total);
	got = malloc(total);
	fill(want, total, 0);
	queued = total / 3;
	evbuffer_add(out, want, queued);
	while (have < total) {
		n = tls_write(p.srv, out);
		if (n == -1)
			assert_int_equal(errno, EAGAIN);
		else
			written += (size_t)n;
		if (evbuffer_get_length(out) > 0)
			blocked++;	/* the socket was full */
		/* the buffer grows while a record waits to be sent again */
		if (queued < total) {
			size_t more = total - queued < 100000 ? total - queued :
			    100000;

			evbuffer_add(out, want + queued, more);
			queued += more;
		}
		while ((r = SSL_read(p.cl, got + have, (int)(total - have))) >
		    0)
			have += (size_t)r;
	}
	assert_true(blocked > 0);
	assert_int_equal(evbuffer_get_length(out), 0);
	assert_int_equal(written, total);
	assert_memory_equal(got, want, total);
	free(want);
	free(got);
	evbuffer_free(out);
	pair_close(&p);
}

static void
test_eof_without_close_notify(void **state)
{
	struct pair	 p;
	struct evbuffer	*in = evbuffer_new();
	int		 want_write;

	pair_open(&p, server_ctx(*state, NULL), client_ctx());
	assert_int_equal(SSL_write(p.cl, "hello", 5), 5);
	shutdown(p.sv[1], SHUT_WR);
	assert_int_equal(tls_read(p.srv, in, 65536, &want_write), 5);
	assert_int_equal(tls_read(p.srv, in, 65536, &want_write), 0);
	evbuffer_free(in);
	pair_close(&p);
}

static void
test_own_client_under_mutual_tls(void **state)
{
	struct fx		*fx = *state;
	struct ssl_ctx_st	*sctx = server_ctx(fx, fx->ca), *own;
	struct pair		 p;
	SSL_CTX			*stranger;

	/* a certificate of the client CA is taken */
	stranger = client_ctx();
	assert_int_equal(SSL_CTX_use_certificate_file(stranger,
	    fx->client_cert, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(stranger, fx->client_key,
	    SSL_FILETYPE_PEM), 1);
	pair_open(&p, tls_ctx_ref(sctx), stranger);
	pair_close(&p);
	/* the port's own certificate is taken too, and pinned */
	own = tls_client_own(sctx);
	pair_open(&p, tls_ctx_ref(sctx), own);
	assert_int_equal(SSL_get_verify_result(p.cl), X509_V_OK);
	pair_close(&p);
	assert_true(tls_same_cert(sctx, sctx));
	assert_false(tls_same_cert(sctx, NULL));
	assert_true(tls_same_cert(NULL, NULL));
	tls_ctx_free(sctx);
}

static void
test_client_without_certificate_refused(void **state)
{
	struct fx		*fx = *state;
	struct ssl_ctx_st	*sctx = server_ctx(fx, fx->ca);
	SSL_CTX			*cctx = client_ctx();
	SSL			*srv, *cl;
	int			 sv[2], i, r = 0, want_write;
	char			 why[TLS_ERR_MAX], buf[8];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	srv = tls_accept_new(sctx, sv[0]);
	cl = SSL_new(cctx);
	SSL_set_fd(cl, sv[1]);
	SSL_set_connect_state(cl);
	why[0] = '\0';
	for (i = 0; i < 100 && r != -1; i++) {
		(void)SSL_do_handshake(cl);
		(void)SSL_read(cl, buf, sizeof(buf));
		r = tls_handshake(srv, &want_write, why, sizeof(why));
	}
	assert_int_equal(r, -1);
	assert_non_null(strstr(why, "certificate"));
	ERR_clear_error();
	tls_free(srv);
	SSL_free(cl);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_free(sctx);
	SSL_CTX_free(cctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_read_whole_records),
		cmocka_unit_test(test_write_resumes),
		cmocka_unit_test(test_eof_without_close_notify),
		cmocka_unit_test(test_own_client_under_mutual_tls),
		cmocka_unit_test(test_client_without_certificate_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

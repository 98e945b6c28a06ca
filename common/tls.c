/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls - server contexts of the listening ports, and the record I/O of a
 * connection that common/http.c drives itself (tls.h).
 *
 * The files are read whole before OpenSSL parses them, so that what is
 * wrong is told precisely (cannot read it and why; no certificate in it;
 * a key that is not the certificate's) and `tenantd -t` says it as
 * file:line: reason.  A key protected by a passphrase is refused: nothing
 * could type it in.
 *
 * Reading: OpenSSL reads one record at a time from the socket (no read
 * ahead), and tls_read always takes what it decrypted whole, so a byte is
 * either in the caller's buffer or still in the kernel, where the socket's
 * readability tells of it.  A caller that stops reading for a while (its
 * client's answers pile up) and reads again later misses nothing.
 *
 * Renegotiation is refused, and TLS 1.3's post-handshake messages (key
 * updates) are answered from inside a read: a read may need the socket
 * writable (tls_read's *want_write), but a write never needs it readable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define TLS_FILE_MAX	(4u << 20)	/* a CA bundle, a chain */
#define TLS_RECORD	16384		/* the largest plaintext record */

/* no_passphrase - PEM callback: there is nobody to ask */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

/* ssl_reason - the last OpenSSL error as text, and the queue emptied */
static const char *
ssl_reason(char *buf, size_t len)
{
	unsigned long	e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* read_pem - a file's text in a memory BIO, or NULL and why */
static BIO *
read_pem(const char *path, char **data, char *why, size_t len)
{
	int	err = 0;
	BIO	*b;

	if ((*data = util_read_file(path, TLS_FILE_MAX, &err)) == NULL) {
		snprintf(why, len, "cannot read %s: %s", path, err == EFBIG ?
		    "larger than 4 MiB" : strerror(err));
		return NULL;
	}
	if ((b = BIO_new_mem_buf(*data, -1)) == NULL)
		fatalx("tls: out of memory");
	return b;
}

/* load_cert - the certificate, then any chain behind it in the file */
static int
load_cert(SSL_CTX *ctx, const char *path, char *why, size_t len)
{
	char	*data, err[256];
	X509	*x, *ca;
	BIO	*b;
	int	 rc = -1;

	if ((b = read_pem(path, &data, why, len)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL)) == NULL)
		snprintf(why, len, "%s holds no PEM certificate (%s)", path,
		    ssl_reason(err, sizeof(err)));
	else if (SSL_CTX_use_certificate(ctx, x) != 1)
		snprintf(why, len, "%s: %s", path, ssl_reason(err,
		    sizeof(err)));
	else
		rc = 0;
	X509_free(x);
	while (rc == 0 && (ca = PEM_read_bio_X509(b, NULL, no_passphrase,
	    NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			snprintf(why, len, "%s: a chain certificate: %s", path,
			    ssl_reason(err, sizeof(err)));
			rc = -1;
		}
	ERR_clear_error();	/* the end of the file */
	BIO_free(b);
	free(data);
	return rc;
}

/* load_key - the private key, which must be the certificate's */
static int
load_key(SSL_CTX *ctx, const char *path, const char *cert, char *why,
    size_t len)
{
	char		*data, err[256];
	EVP_PKEY	*k;
	BIO		*b;
	int		 rc = -1;

	if ((b = read_pem(path, &data, why, len)) == NULL)
		return -1;
	if ((k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL)) ==
	    NULL)
		snprintf(why, len, "%s holds no PEM private key, or one "
		    "protected by a passphrase (%s)", path,
		    ssl_reason(err, sizeof(err)));
	else if (SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(why, len, "the key in %s does not match the "
		    "certificate in %s", path, cert);
	} else
		rc = 0;
	EVP_PKEY_free(k);
	BIO_free(b);
	OPENSSL_cleanse(data, strlen(data));
	free(data);
	return rc;
}

/*
 * verify_client - a client certificate that does not verify against the
 * client CA is still taken when it is the port's own certificate: the
 * client holds the port's key, so it is tenantd itself (a worker's link
 * to another's port, tls_client_own)
 */
static int
verify_client(int ok, X509_STORE_CTX *xs)
{
	SSL	*ssl;
	X509	*own, *peer;

	if (ok)
		return 1;
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	own = ssl != NULL ? SSL_CTX_get0_certificate(SSL_get_SSL_CTX(ssl)) :
	    NULL;
	peer = X509_STORE_CTX_get0_cert(xs);
	return own != NULL && peer != NULL && X509_cmp(own, peer) == 0;
}

/*
 * load_client_ca - every certificate of the file is a trust anchor for
 * client certificates, and its name is sent to clients as one accepted
 */
static int
load_client_ca(SSL_CTX *ctx, const char *path, char *why, size_t len)
{
	STACK_OF(X509_INFO)	*infos;
	X509_STORE		*store = SSL_CTX_get_cert_store(ctx);
	X509_INFO		*xi;
	char			*data, err[256];
	BIO			*b;
	int			 i, n = 0, rc = -1;

	if ((b = read_pem(path, &data, why, len)) == NULL)
		return -1;
	if ((infos = PEM_X509_INFO_read_bio(b, NULL, no_passphrase,
	    NULL)) == NULL) {
		snprintf(why, len, "%s: %s", path, ssl_reason(err,
		    sizeof(err)));
		goto done;
	}
	for (i = 0; i < sk_X509_INFO_num(infos); i++) {
		xi = sk_X509_INFO_value(infos, i);
		if (xi->x509 == NULL)
			continue;
		if (X509_STORE_add_cert(store, xi->x509) != 1 ||
		    SSL_CTX_add_client_CA(ctx, xi->x509) != 1) {
			snprintf(why, len, "%s: %s", path, ssl_reason(err,
			    sizeof(err)));
			goto done;
		}
		n++;
	}
	if (n == 0)
		snprintf(why, len, "%s holds no PEM certificate", path);
	else
		rc = 0;
done:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(b);
	free(data);
	ERR_clear_error();
	if (rc == 0)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_client);
	return rc;
}

/*
 * ctx_defaults - TLS 1.2 at least, OpenSSL's ciphers, no renegotiation,
 * no stateful session cache (a ticket resumes), buffers released while a
 * connection is idle, and a client that closes without close_notify seen
 * as one that closed (HTTP and the session protocol frame their own data)
 */
static SSL_CTX *
ctx_defaults(void)
{
	static const unsigned char	 sid[] = "tenantd";
	SSL_CTX				*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		fatalx("tls: SSL_CTX_new failed");
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		fatalx("tls: cannot require TLS 1.2");
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	return ctx;
}

/* tls_ctx_new - a port's server context, or NULL with the key at fault */
struct ssl_ctx_st *
tls_ctx_new(const struct conf_tls *t, const char **which, char *why,
    size_t len)
{
	SSL_CTX	*ctx = ctx_defaults();

	*which = "cert_file";
	if (load_cert(ctx, t->cert_file, why, len) == -1)
		goto fail;
	*which = "key_file";
	if (load_key(ctx, t->key_file, t->cert_file, why, len) == -1)
		goto fail;
	*which = "client_ca_file";
	if (t->client_ca_file != NULL &&
	    load_client_ca(ctx, t->client_ca_file, why, len) == -1)
		goto fail;
	*which = NULL;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

struct ssl_ctx_st *
tls_ctx_ref(struct ssl_ctx_st *ctx)
{
	if (ctx != NULL && SSL_CTX_up_ref(ctx) != 1)
		fatalx("tls: SSL_CTX_up_ref failed");
	return ctx;
}

/*
 * tls_client_own - a client context for a link to one of tenantd's own
 * ports: it trusts exactly the port's certificate (whatever names it
 * bears: the link may go to 127.0.0.1), and shows that same certificate,
 * with its chain and key, to a port that asks for one
 */
struct ssl_ctx_st *
tls_client_own(struct ssl_ctx_st *server)
{
	STACK_OF(X509)	*chain = NULL;
	X509		*leaf = SSL_CTX_get0_certificate(server);
	EVP_PKEY	*key = SSL_CTX_get0_privatekey(server);
	SSL_CTX		*ctx;
	int		 i;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    leaf == NULL || key == NULL)
		fatalx("tls: cannot make a client context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), leaf) != 1 ||
	    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
	    X509_V_FLAG_PARTIAL_CHAIN) != 1 ||
	    SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1)
		fatalx("tls: cannot make a client context");
	SSL_CTX_get0_chain_certs(server, &chain);
	for (i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(chain, i)) != 1)
			fatalx("tls: cannot make a client context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* tls_same_cert - do a and b (or NULL) serve the same certificate? */
int
tls_same_cert(struct ssl_ctx_st *a, struct ssl_ctx_st *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return X509_cmp(SSL_CTX_get0_certificate(a),
	    SSL_CTX_get0_certificate(b)) == 0;
}

/* tls_accept_new - the server side of a new connection */
struct ssl_st *
tls_accept_new(struct ssl_ctx_st *ctx, int fd)
{
	SSL	*ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		fatalx("tls: SSL_new failed");
	if (fd != -1 && SSL_set_fd(ssl, fd) != 1)
		fatalx("tls: SSL_set_fd failed");
	SSL_set_accept_state(ssl);
	return ssl;
}

/* tls_handshake - one step of the server's handshake */
int
tls_handshake(struct ssl_st *ssl, int *want_write, char *why, size_t len)
{
	char	err[256];
	int	r;

	*want_write = 0;
	ERR_clear_error();
	if ((r = SSL_do_handshake(ssl)) == 1)
		return 1;
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*want_write = 1;
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(why, len, "%s", errno != 0 ? strerror(errno) :
			    "the client closed");
			return -1;
		}
		/* FALLTHROUGH */
	default:
		snprintf(why, len, "%s", ssl_reason(err, sizeof(err)));
		return -1;
	}
}

/*
 * io_failed - SSL_read or SSL_write gave r: errno EAGAIN when it is to be
 * tried again, *want_write when the socket must be writable for it
 */
static void
io_failed(SSL *ssl, int r, int *want_write)
{
	int	saved = errno;

	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
		*want_write = 1;
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		break;
	case SSL_ERROR_SYSCALL:
		errno = saved != 0 && saved != EAGAIN ? saved : ECONNRESET;
		break;
	default:
		errno = EPROTO;
		break;
	}
	ERR_clear_error();
}

/* tls_read - decrypt what came into buf (see tls.h) */
ssize_t
tls_read(struct ssl_st *ssl, struct evbuffer *buf, size_t max,
    int *want_write)
{
	struct evbuffer_iovec	v;
	size_t			got = 0;
	int			r;

	*want_write = 0;
	ERR_clear_error();	/* SSL_get_error reads the queue */
	while (got < max || SSL_pending(ssl) > 0) {
		if (evbuffer_reserve_space(buf, TLS_RECORD, &v, 1) < 1)
			fatalx("tls: out of memory");
		errno = 0;
		r = SSL_read(ssl, v.iov_base, (int)(v.iov_len < TLS_RECORD ?
		    v.iov_len : TLS_RECORD));
		if (r <= 0) {
			evbuffer_commit_space(buf, NULL, 0);
			if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN) {
				ERR_clear_error();
				return (ssize_t)got;	/* 0: the end */
			}
			io_failed(ssl, r, want_write);
			return got > 0 && errno == EAGAIN ? (ssize_t)got : -1;
		}
		v.iov_len = (size_t)r;
		evbuffer_commit_space(buf, &v, 1);
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * tls_write - encrypt and send buf (see tls.h).  A record at a time, from
 * the front: a record that could not all leave is sent again from the
 * same bytes (which may have moved), as OpenSSL requires.
 */
ssize_t
tls_write(struct ssl_st *ssl, struct evbuffer *buf)
{
	size_t	total = 0, len;
	int	r, want_write = 0;

	ERR_clear_error();
	while ((len = evbuffer_get_length(buf)) > 0) {
		if (len > TLS_RECORD)
			len = TLS_RECORD;
		errno = 0;
		r = SSL_write(ssl, evbuffer_pullup(buf, (ssize_t)len),
		    (int)len);
		if (r <= 0) {
			io_failed(ssl, r, &want_write);
			if (errno == EAGAIN && want_write)
				return total > 0 ? (ssize_t)total : -1;
			if (errno == EAGAIN)	/* wants to read: see above */
				errno = EPROTO;
			return -1;
		}
		evbuffer_drain(buf, (size_t)r);
		total += (size_t)r;
	}
	return (ssize_t)total;
}

/* tls_shutdown - close_notify, if the connection can still send one */
void
tls_shutdown(struct ssl_st *ssl)
{
	if (SSL_is_init_finished(ssl) &&
	    !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

void
tls_free(struct ssl_st *ssl)
{
	SSL_free(ssl);
}

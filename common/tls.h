/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls - TLS on the listening ports (workers.<name>.tls, docs/operations.md
 * "TLS"): the server context of a port, built once from its certificate,
 * key and optional client CA when the configuration is loaded (so that
 * `tenantd -t` checks the files, and a reload that cannot load them keeps
 * the context in force), and the record I/O of a connection whose socket
 * common/http.c reads and writes itself.  The session ports (common/sess.c)
 * put libevent's OpenSSL bufferevent on the same context instead.
 *
 * A context asks for TLS 1.2 at least, takes OpenSSL's default ciphers,
 * refuses renegotiation, and, with a client CA, requires a client
 * certificate that it verifies (or the port's own: tls_client_own).  A connection keeps the context it was
 * accepted with: a reload gives new connections the new one.
 */
#ifndef TENANTD_TLS_H
#define TENANTD_TLS_H

#include <sys/types.h>

#include <stddef.h>

struct conf_tls;
struct evbuffer;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */
struct ssl_st;		/* OpenSSL's SSL */

#define TLS_ERR_MAX	512

/*
 * The server context for a port's tls keys (paths already absolute), or
 * NULL: *which names the key at fault ("cert_file", "key_file" or
 * "client_ca_file") and why says what is wrong with it.
 */
struct ssl_ctx_st *tls_ctx_new(const struct conf_tls *, const char **which,
		    char *why, size_t len);
/* Drop one reference; NULL does nothing. */
void		 tls_ctx_free(struct ssl_ctx_st *);
/* Take one more reference (a server keeps the context it serves). */
struct ssl_ctx_st *tls_ctx_ref(struct ssl_ctx_st *);

/*
 * A client context for a link to one of tenantd's own TLS ports (server
 * is that port's context): it trusts exactly the port's certificate, and
 * shows the same certificate to a port that asks for one, which the port
 * takes, as it is its own, even when it does not verify against its
 * client CA.
 */
struct ssl_ctx_st *tls_client_own(struct ssl_ctx_st *server);
/* Do two contexts (or NULL: plaintext) serve the same certificate? */
int		 tls_same_cert(struct ssl_ctx_st *, struct ssl_ctx_st *);

/* A server-side connection on fd (-1: set later), to be handshaken. */
struct ssl_st	*tls_accept_new(struct ssl_ctx_st *, int fd);
/*
 * Go on with the handshake: 1 done, 0 to be called again once the socket
 * is readable (*want_write 0) or writable (1), -1 failed (why says why).
 */
int		 tls_handshake(struct ssl_st *, int *want_write, char *why,
		    size_t len);
/*
 * Read and decrypt what the socket has into buf, as evbuffer_read(3)
 * does: bytes added, 0 at the end of the stream, -1 with errno EAGAIN
 * (nothing now; *want_write set when the socket must be writable first)
 * or another errno when the connection broke.  At least max bytes are
 * read if there are; a record decrypted is always taken whole, so that
 * no byte waits inside OpenSSL while the socket is quiet.
 */
ssize_t		 tls_read(struct ssl_st *, struct evbuffer *buf, size_t max,
		    int *want_write);
/*
 * Encrypt and write what buf holds (drained as it goes), as
 * evbuffer_write(3) does: bytes written, or -1 with errno EAGAIN (the
 * socket is full) or another errno when the connection broke.
 */
ssize_t		 tls_write(struct ssl_st *, struct evbuffer *buf);
/* Send close_notify, without waiting (best effort). */
void		 tls_shutdown(struct ssl_st *);
/* Free a connection (the socket is the caller's). */
void		 tls_free(struct ssl_st *);

#endif

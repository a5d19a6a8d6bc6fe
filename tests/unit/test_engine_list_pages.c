/*
 * ocisync_list_tags and ocisync_catalog follow the registry's pages (Link
 * headers, RFC 5988, as the distribution spec pages tag lists and
 * catalogs), against recorded answers served on loopback by test_http_srv.h
 * (docker-registry 2.8 ignores ?n= on tag lists, so the integration tests
 * cannot make it page them; ocisync asks for n=1000 a page): three pages in order, a relative and
 * an absolute Link, a Link to another host refused, and a loop of pages cut.
 */
#include "test_http_srv.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void page(struct srv_conn *c, const char *link, const char *json)
{
    if (link != NULL)
        srv_sendf(c, false,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLink: %s\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  link, strlen(json), json);
    else
        srv_sendf(
            c, false,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
            strlen(json), json);
}

static void handler(struct srv *s, struct srv_conn *c, struct srv_req *q)
{
    char link[256];

    if (strcmp(q->url, "/v2/") == 0) {
        srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    } else if (strcmp(q->url, "/v2/team/app/tags/list?n=1000") == 0) {
        page(c, "</v2/team/app/tags/list?last=b&n=2>; rel=\"next\"",
             "{\"name\":\"team/app\",\"tags\":[\"a\",\"b\"]}");
    } else if (strcmp(q->url, "/v2/team/app/tags/list?last=b&n=2") == 0) {
        /* An absolute Link to the same origin is fine too. */
        snprintf(link, sizeof(link),
                 "<http://127.0.0.1:%d/v2/team/app/tags/list?last=d&n=2>; rel=\"next\"", s->port);
        page(c, link, "{\"name\":\"team/app\",\"tags\":[\"c\",\"d\"]}");
    } else if (strcmp(q->url, "/v2/team/app/tags/list?last=d&n=2") == 0) {
        page(c, NULL, "{\"name\":\"team/app\",\"tags\":[\"e\"]}");
    } else if (strcmp(q->url, "/v2/team/away/tags/list?n=1000") == 0) {
        /* A next page on another host: never followed (credentials stay with their origin). */
        page(c, "<http://192.0.2.1:5000/v2/team/away/tags/list?last=a>; rel=\"next\"",
             "{\"name\":\"team/away\",\"tags\":[\"a\"]}");
    } else if (strcmp(q->url, "/v2/team/loop/tags/list?n=1000") == 0 ||
               strcmp(q->url, "/v2/team/loop/tags/list?last=x") == 0) {
        /* A registry that sends the same page for ever. */
        page(c, "</v2/team/loop/tags/list?last=x>; rel=\"next\"",
             "{\"name\":\"team/loop\",\"tags\":[\"x\"]}");
    } else if (strncmp(q->url, "/v2/_catalog?n=", 15) == 0 && strchr(q->url, '&') == NULL) {
        page(c, "</v2/_catalog?last=team%2Fa&n=1>; rel=\"next\"",
             "{\"repositories\":[\"team/a\"]}");
    } else if (strcmp(q->url, "/v2/_catalog?last=team%2Fa&n=1") == 0) {
        page(c, NULL, "{\"repositories\":[\"team/b\"]}");
    } else {
        srv_send(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static void st_start(struct srv_thread *t)
{
    srv_thread_start(t, handler);
}

static void st_stop(struct srv_thread *t)
{
    srv_thread_stop(t);
    srv_free(&t->srv);
}

static void opts_for(struct ocisync_read_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->copy.src.plain_http = OCISYNC_PLAIN_HTTP_ALWAYS;
    o->copy.retry_times = -1;
}

TEST(tags_follow_pages)
{
    struct srv_thread t;
    struct ocisync_read_opts o;
    struct ocisync_list_result r;
    char repo[128], joined[64] = "";

    st_start(&t);
    opts_for(&o);
    snprintf(repo, sizeof(repo), "127.0.0.1:%d/team/app", t.srv.port);
    memset(&r, 0, sizeof(r));
    CHECK_INT(ocisync_list_tags(repo, &o, NULL, &r), 0);
    for (size_t i = 0; i < r.n; i++)
        strcat(strcat(joined, r.names[i]), " ");
    CHECK_STR(joined, "a b c d e ");
    ocisync_list_result_free(&r);
    st_stop(&t);
}

TEST(foreign_link_refused)
{
    struct srv_thread t;
    struct ocisync_read_opts o;
    struct ocisync_list_result r;
    char repo[128];

    st_start(&t);
    opts_for(&o);
    snprintf(repo, sizeof(repo), "127.0.0.1:%d/team/away", t.srv.port);
    memset(&r, 0, sizeof(r));
    CHECK(ocisync_list_tags(repo, &o, NULL, &r) != 0);
    CHECK(r.error[0] != '\0');
    printf("  error: %s\n", r.error);
    ocisync_list_result_free(&r);
    st_stop(&t);
}

TEST(page_loop_cut)
{
    struct srv_thread t;
    struct ocisync_read_opts o;
    struct ocisync_list_result r;
    char repo[128];

    st_start(&t);
    opts_for(&o);
    snprintf(repo, sizeof(repo), "127.0.0.1:%d/team/loop", t.srv.port);
    memset(&r, 0, sizeof(r));
    CHECK(ocisync_list_tags(repo, &o, NULL, &r) != 0);
    printf("  error: %s\n", r.error);
    CHECK(strstr(r.error, "its next page is the page it just sent") != NULL);
    CHECK(t.srv.n_reqs <= 4); /* /v2/, the first page, the page that names itself */
    ocisync_list_result_free(&r);
    st_stop(&t);
}

TEST(catalog_follows_pages)
{
    struct srv_thread t;
    struct ocisync_read_opts o;
    struct ocisync_list_result r;
    char reg[64], joined[64] = "";

    st_start(&t);
    opts_for(&o);
    snprintf(reg, sizeof(reg), "127.0.0.1:%d", t.srv.port);
    memset(&r, 0, sizeof(r));
    CHECK_INT(ocisync_catalog(reg, NULL, &o, &r), 0);
    for (size_t i = 0; i < r.n; i++)
        strcat(strcat(joined, r.names[i]), " ");
    CHECK_STR(joined, "team/a team/b ");
    ocisync_list_result_free(&r);
    st_stop(&t);
}

TEST_MAIN(T(tags_follow_pages), T(foreign_link_refused), T(page_loop_cut), T(catalog_follows_pages))

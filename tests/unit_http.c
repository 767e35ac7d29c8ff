/* unit_http.c - the retry decisions shared by runs and checks (http.h). */
#include "http.h"
#include "test.h"

#include <curl/curl.h>

TEST(http_backoff_doubles_and_yields_to_a_longer_retry_after)
{
	ASSERT_EQ_INT(http_backoff_ms(500, 1, -1), 500);
	ASSERT_EQ_INT(http_backoff_ms(500, 2, -1), 1000);
	ASSERT_EQ_INT(http_backoff_ms(500, 4, -1), 4000);
	/* Retry-After wins only when longer, and is capped */
	ASSERT_EQ_INT(http_backoff_ms(500, 1, 2), 2000);
	ASSERT_EQ_INT(http_backoff_ms(500, 4, 2), 4000);
	ASSERT_EQ_INT(http_backoff_ms(20, 1, 100000), HTTP_MAX_RETRY_AFTER_S * 1000);
	/* a Retry-After of 0 asks for nothing beyond the backoff */
	ASSERT_EQ_INT(http_backoff_ms(20, 1, 0), 20);
	/* absurd attempt numbers neither overflow nor wrap to 0 */
	ASSERT(http_backoff_ms(500, 200, -1) >= 500);
	ASSERT_EQ_INT(http_backoff_ms(500, 0, -1), 500);
}

TEST(http_result_is_transient_for_429_5xx_and_passing_errors)
{
	struct http_result r = {.retry_after_s = -1};
	r.status = 429;
	ASSERT(http_result_is_transient(&r));
	r.status = 503;
	ASSERT(http_result_is_transient(&r));
	r.status = 500;
	ASSERT(http_result_is_transient(&r));
	r.status = 401;
	ASSERT(!http_result_is_transient(&r));
	r.status = 200;
	ASSERT(!http_result_is_transient(&r));
	r.status = 0;
	r.curl_code = CURLE_OPERATION_TIMEDOUT;
	ASSERT(http_result_is_transient(&r));
	r.curl_code = CURLE_COULDNT_CONNECT;
	ASSERT(http_result_is_transient(&r));
	r.curl_code = CURLE_PEER_FAILED_VERIFICATION;
	ASSERT(!http_result_is_transient(&r));
}

TEST(http_result_why_names_the_status_or_the_transport_error)
{
	char why[HTTP_WHY_MAX];
	struct http_result r = {.status = 503, .error = "", .retry_after_s = -1};
	ASSERT_EQ_STR(http_result_why(&r, why, sizeof(why)), "HTTP 503");
	r.status = 429;
	r.retry_after_s = 1;
	ASSERT_EQ_STR(http_result_why(&r, why, sizeof(why)), "HTTP 429, Retry-After");
	r = (struct http_result){.curl_code = CURLE_COULDNT_CONNECT, .retry_after_s = -1,
				 .error = "Failed to connect to 127.0.0.1 port 9: Connection refused"};
	ASSERT_EQ_STR(http_result_why(&r, why, sizeof(why)),
		      "Failed to connect to 127.0.0.1 port 9: Connection refused");
}

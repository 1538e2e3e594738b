package worker

import "strings"

// Werkzeug's default pages. DRUM answers routing errors (404, 405, 308) with them, not
// with JSON: its JSON error handler only sees exceptions raised inside matched views.

const (
	contentTypeHTML = "text/html; charset=utf-8"
	contentTypeJSON = "application/json"

	page404 = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n" +
		"<p>The requested URL was not found on the server. If you entered the URL manually " +
		"please check your spelling and try again.</p>\n"
	page405 = "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n" +
		"<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"
)

// redirectPage is werkzeug.utils.redirect's body for location.
func redirectPage(location string) []byte {
	esc := htmlEscape(location)
	return []byte("<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n" +
		"<p>You should be redirected automatically to the target URL: <a href=\"" + esc + "\">" +
		esc + "</a>. If not, click the link.\n")
}

// htmlEscape is markupsafe.escape.
var htmlEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace

// urlQuote is werkzeug.urls.url_quote(s, safe=safe): every byte but unreserved
// characters and safe becomes %XX.
func urlQuote(s, safe string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			strings.IndexByte("-._~", c) >= 0 || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&0xf])
	}
	return b.String()
}

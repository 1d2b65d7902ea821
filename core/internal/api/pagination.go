package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/estela-go/estela-go/core/internal/store"
)

// pageParams are the page and page_size of a list request.
type pageParams struct {
	page, size int
}

// readPage reads page (from 1) and page_size (1..max, defaulting to def) from the query.
// Larger sizes are clamped to max, as DRF does; malformed values give 400 naming the field.
func readPage(r *http.Request, def, max int) (pageParams, error) {
	return readPageParams(r, def, max, true)
}

// readBoundedPage is readPage for the routes where estela rejects a size over max with a 400.
func readBoundedPage(r *http.Request, def, max int) (pageParams, error) {
	return readPageParams(r, def, max, false)
}

// maxPageNumber bounds page numbers, so that a page's offset cannot overflow. No list holds
// that many pages of even one item.
const maxPageNumber = 1_000_000_000

func readPageParams(r *http.Request, def, max int, clamp bool) (pageParams, error) {
	p := pageParams{page: 1, size: def}
	q := r.URL.Query()
	var pageErr, sizeErr error
	if raw := q.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageNumber {
			pageErr = errField("page", fmt.Sprintf("A page number must be an integer between 1 and %d.", maxPageNumber))
		} else {
			p.page = n
		}
	}
	if raw := q.Get("page_size"); raw != "" {
		n, err := strconv.Atoi(raw)
		switch {
		case clamp && (err != nil || n < 1):
			sizeErr = errField("page_size", fmt.Sprintf("A page size must be a positive integer; sizes over %d give pages of %d.", max, max))
		case !clamp && (err != nil || n < 1 || n > max):
			sizeErr = errField("page_size", fmt.Sprintf("A page size must be an integer between 1 and %d.", max))
		default:
			p.size = min(n, max)
		}
	}
	return p, joinFieldErrors(pageErr, sizeErr)
}

func (p pageParams) store() store.Page {
	return store.Page{Offset: (p.page - 1) * p.size, Limit: p.size}
}

// envelope builds the page envelope, or 404 "Invalid page." for a page past the end.
func envelope[T any](r *http.Request, p pageParams, count int, results []T) (pageOf[T], error) {
	if p.page > 1 && (p.page-1)*p.size >= count {
		return pageOf[T]{}, errDetail(http.StatusNotFound, "Invalid page.")
	}
	return pageLinks(r, p, count, results), nil
}

// pageLinks builds the page envelope without checking the page number.
func pageLinks[T any](r *http.Request, p pageParams, count int, results []T) pageOf[T] {
	if results == nil {
		results = []T{}
	}
	env := pageOf[T]{Count: count, Results: results}
	if p.page*p.size < count {
		next := pageURL(r, p.page+1)
		env.Next = &next
	}
	if p.page > 1 {
		prev := pageURL(r, p.page-1)
		env.Previous = &prev
	}
	return env
}

// pageURL returns the absolute URL of the request with another page number. The first
// page's URL has no page parameter, as in DRF.
func pageURL(r *http.Request, page int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	if page == 1 {
		q.Del("page")
	}
	u := url.URL{Scheme: requestScheme(r), Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

func requestScheme(r *http.Request) string {
	if proto := r.Header.Get("X-Forwarded-Proto"); proto == "https" || proto == "http" {
		return proto
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

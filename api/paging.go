package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/cuttledeploy/cuttle"
)

// defaultTake is the page size when a list request names none; maxTake
// bounds it, and maxSkip bounds skip (so that skip+take cannot overflow).
const (
	defaultTake = 30
	maxTake     = 1000
	maxSkip     = 1_000_000_000
)

// page is the Octopus list envelope.
type page[T any] struct {
	ItemType       string
	TotalResults   int
	ItemsPerPage   int
	NumberOfPages  int
	LastPageNumber int
	Items          []T
	Links          map[string]string
}

// pageParams reads skip and take: KindInvalid if either is not a number in
// range (skip 0 to maxSkip; take at least 0, and more than maxTake is
// maxTake).
func pageParams(r *http.Request) (skip, take int, err error) {
	q := r.URL.Query()
	skip, take = 0, defaultTake
	if v := q.Get("skip"); v != "" {
		if skip, err = strconv.Atoi(v); err != nil || skip < 0 || skip > maxSkip {
			return 0, 0, cuttle.Errorf(cuttle.KindInvalid, "skip must be a whole number from 0 to %d.", maxSkip)
		}
	}
	if v := q.Get("take"); v != "" {
		if take, err = strconv.Atoi(v); err != nil || take < 0 {
			return 0, 0, cuttle.Errorf(cuttle.KindInvalid, "take must be a whole number of at least 0.")
		}
		take = min(take, maxTake)
	}
	return skip, take, nil
}

// writePage answers with the page of all that skip and take select.
func writePage[T any](w http.ResponseWriter, r *http.Request, itemType, path string, all []T) error {
	skip, take, err := pageParams(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newPage(itemType, path, pageOf(all, skip, take), len(all), skip, take))
	return nil
}

// pageOf returns the items of all at skip and take (-1: all that follow).
func pageOf[T any](all []T, skip, take int) []T {
	skip = min(skip, len(all))
	if take < 0 {
		return all[skip:]
	}
	return all[skip:min(skip+take, len(all))]
}

// newPage returns the envelope of items, the page at skip and take of total.
func newPage[T any](itemType, path string, items []T, total, skip, take int) page[T] {
	pages, last := 0, 0
	if take > 0 {
		pages = (total + take - 1) / take
		last = max(pages-1, 0)
	}
	links := map[string]string{
		"Self":         pageLink(path, skip, take),
		"Template":     path + "{?skip,take,ids}",
		"Page.All":     path + "/all",
		"Page.Current": pageLink(path, skip, take),
		"Page.Last":    pageLink(path, last*take, take),
	}
	if take > 0 && skip+take < total {
		links["Page.Next"] = pageLink(path, skip+take, take)
	}
	if skip > 0 && take > 0 {
		links["Page.Previous"] = pageLink(path, max(skip-take, 0), take)
	}
	if items == nil {
		items = []T{}
	}
	return page[T]{
		ItemType: itemType, TotalResults: total, ItemsPerPage: take, NumberOfPages: pages,
		LastPageNumber: last, Items: items, Links: links,
	}
}

func pageLink(path string, skip, take int) string {
	return path + "?skip=" + strconv.Itoa(skip) + "&take=" + strconv.Itoa(take)
}

// idFilter returns the ids of the ids=A,B query parameter, or nil when it is
// absent. An id of the wrong form answers KindInvalid.
func idFilter(r *http.Request, prefix string) (map[string]bool, error) {
	v := r.URL.Query().Get("ids")
	if v == "" {
		return nil, nil
	}
	ids := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		n, err := cuttle.ParseID(prefix, s)
		if err != nil {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "ids holds %q, which is not an id of the form %sN.", s, prefix)
		}
		ids[cuttle.FormatID(prefix, n)] = true
	}
	return ids, nil
}

// filterByID keeps the items whose id is in ids; nil ids keeps all.
func filterByID[T any](items []T, ids map[string]bool, id func(T) string) []T {
	if ids == nil {
		return items
	}
	out := items[:0:0]
	for _, it := range items {
		if ids[id(it)] {
			out = append(out, it)
		}
	}
	return out
}

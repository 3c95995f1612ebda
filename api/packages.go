package api

import (
	"bufio"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/feed"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// packageView is a package version as Octopus serves it. It has no
// ReleaseNotes: the official client reads that name into a time.Time
// (OCTOPUS-API.md, Package).
type packageView struct {
	Id               string            `json:"Id"`
	PackageId        string            `json:"PackageId"`
	Version          string            `json:"Version"`
	Title            string            `json:"Title"`
	Summary          string            `json:"Summary"`
	Description      string            `json:"Description"`
	Published        time.Time         `json:"Published"`
	FeedId           string            `json:"FeedId"`
	PackageSizeBytes int64             `json:"PackageSizeBytes"`
	Hash             string            `json:"Hash"`
	FileExtension    string            `json:"FileExtension"`
	Links            map[string]string `json:"Links"`
}

// packageID is the Octopus id of a package version.
func packageID(p cuttle.Package) string { return "packages-" + p.PackageId + "." + p.PackageVersion }

func viewPackage(p cuttle.Package) packageView {
	self := "/api/" + DefaultSpaceID + "/packages/" + packageID(p)
	return packageView{
		Id: packageID(p), PackageId: p.PackageId, Version: p.PackageVersion, Title: p.PackageId,
		Published: p.Published, FeedId: cuttle.BuiltinFeedID, PackageSizeBytes: p.PackageSizeBytes,
		Hash: p.Hash, FileExtension: p.FileExtension,
		Links: map[string]string{"Self": self, "Raw": self + "/raw", "Feed": "/api/" + DefaultSpaceID + "/feeds/" + cuttle.BuiltinFeedID},
	}
}

// packageVersionView is an item of the feed's versions search.
type packageVersionView struct {
	Id        string            `json:"Id"`
	PackageId string            `json:"PackageId"`
	FeedId    string            `json:"FeedId"`
	Version   string            `json:"Version"`
	Title     string            `json:"Title"`
	Published time.Time         `json:"Published"`
	SizeBytes int64             `json:"SizeBytes"`
	Links     map[string]string `json:"Links"`
}

// feedView is the built-in feed.
type feedView struct {
	Id                                string            `json:"Id"`
	Name                              string            `json:"Name"`
	FeedType                          string            `json:"FeedType"`
	SpaceId                           string            `json:"SpaceId"`
	IsBuiltInRepoSyncEnabled          bool              `json:"IsBuiltInRepoSyncEnabled"`
	DeleteUnreleasedPackagesAfterDays int               `json:"DeleteUnreleasedPackagesAfterDays"`
	PackageAcquisitionLocationOptions []string          `json:"PackageAcquisitionLocationOptions"`
	Links                             map[string]string `json:"Links"`
}

func (s *Server) builtinFeed() feedView {
	base := "/api/" + DefaultSpaceID + "/feeds/" + cuttle.BuiltinFeedID
	return feedView{
		Id: cuttle.BuiltinFeedID, Name: "Octopus Server (built-in)", FeedType: "BuiltIn", SpaceId: DefaultSpaceID,
		DeleteUnreleasedPackagesAfterDays: int(s.limits.PackageRetention / (24 * time.Hour)),
		PackageAcquisitionLocationOptions: []string{"Server", "ExecutionTarget"},
		Links: map[string]string{
			"Self":                            base,
			"SearchPackageVersionsTemplate":   base + "/packages/versions{?packageId,take,skip,includePreRelease,versionRange,preReleaseTag,filter,includeReleaseNotes}",
			"SearchPackagesTemplate":          base + "/packages/search{?term,take,skip}",
			"BuiltInFeedStatisticsTemplate":   base + "/stats",
			"PackagesTemplate":                "/api/" + DefaultSpaceID + "/packages{?nuGetPackageId,filter,latest,skip,take,includeNotes}",
			"NotesTemplate":                   base + "/packages/notes{?packageIds}",
			"PackageUploadTemplateForBuiltIn": "/api/" + DefaultSpaceID + "/packages/raw{?replace,overwriteMode}",
		},
	}
}

func (s *Server) packageRoutes() {
	s.links["Feeds"] = "/api/" + DefaultSpaceID + "/feeds{/id}{?skip,take,ids,partialName,feedType,name}"
	s.links["Packages"] = "/api/" + DefaultSpaceID + "/packages{/id}{?nuGetPackageId,filter,latest,skip,take,includeNotes}"
	s.links["PackageUpload"] = "/api/" + DefaultSpaceID + "/packages/raw{?replace,overwriteMode}"
	for _, p := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+p+"/feeds", can("FeedView"), s.handleFeedList)
		s.handle("GET "+p+"/feeds/all", can("FeedView"), func(w http.ResponseWriter, r *http.Request) error {
			writeJSON(w, http.StatusOK, []feedView{s.builtinFeed()})
			return nil
		})
		s.handle("GET "+p+"/feeds/{id}", can("FeedView"), s.handleFeedGet)
		s.handle("GET "+p+"/feeds/{id}/packages/versions", can("FeedView"), s.handlePackageVersions)
		s.handle("GET "+p+"/feeds/{id}/packages/search", can("FeedView"), s.handlePackageSearch)
		s.handle("POST "+p+"/packages/raw", can("BuiltInFeedPush"), s.handlePackageUpload)
		s.handle("GET "+p+"/packages", can("FeedView"), s.handlePackageList)
		s.handle("GET "+p+"/packages/{id}", can("FeedView"), s.handlePackageGet)
		s.handle("GET "+p+"/packages/{id}/raw", can("BuiltInFeedDownload"), s.handlePackageDownload)
		s.handle("DELETE "+p+"/packages/{id}", can("BuiltInFeedAdminister"), s.handlePackageDelete)
		// No delta uploads: a 404 makes the CLI upload the whole file.
		s.handle("GET "+p+"/packages/{packageId}/{version}/delta-signature", can("BuiltInFeedPush"), noDelta)
		s.handle("POST "+p+"/packages/{packageId}/{version}/delta", can("BuiltInFeedPush"), noDelta)
	}
}

func noDelta(w http.ResponseWriter, r *http.Request) error {
	return cuttle.Errorf(cuttle.KindNotFound, "cuttle takes whole package uploads only (POST /api/%s/packages/raw).", DefaultSpaceID)
}

// checkFeed returns KindNotFound unless id names the built-in feed.
func checkFeed(id string) error {
	if !strings.EqualFold(id, cuttle.BuiltinFeedID) {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no feed %q: cuttle has the built-in feed, %s.", id, cuttle.BuiltinFeedID)
	}
	return nil
}

func (s *Server) handleFeedList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	feeds := []feedView{s.builtinFeed()}
	match := func(f feedView) bool {
		if t := q.Get("feedType"); t != "" && !strings.EqualFold(t, f.FeedType) {
			return false
		}
		if n := q.Get("name"); n != "" && !strings.EqualFold(n, f.Name) {
			return false
		}
		if n := q.Get("partialName"); n != "" && !strings.Contains(strings.ToLower(f.Name), strings.ToLower(n)) {
			return false
		}
		if ids := queryIDs(r); len(ids) > 0 && !slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, f.Id) }) {
			return false
		}
		return true
	}
	var out []feedView
	for _, f := range feeds {
		if match(f) {
			out = append(out, f)
		}
	}
	if out == nil {
		out = []feedView{}
	}
	return writePage(w, r, "Feed", "/api/"+DefaultSpaceID+"/feeds", out)
}

func (s *Server) handleFeedGet(w http.ResponseWriter, r *http.Request) error {
	if err := checkFeed(r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.builtinFeed())
	return nil
}

// handlePackageVersions lists a package's versions, highest first:
// packageId (required), filter (a version contains it), includePreRelease
// (default true).
func (s *Server) handlePackageVersions(w http.ResponseWriter, r *http.Request) error {
	if err := checkFeed(r.PathValue("id")); err != nil {
		return err
	}
	q := r.URL.Query()
	id := q.Get("packageId")
	if id == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "packageId is required: the package whose versions to list.")
	}
	pre := q.Get("includePreRelease") != "false"
	var items []packageVersionView
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		ps, err := resources.PackageVersions(r.Context(), tx, DefaultSpaceID, id)
		for _, p := range ps {
			if f := q.Get("filter"); f != "" && !strings.Contains(strings.ToLower(p.PackageVersion), strings.ToLower(f)) {
				continue
			}
			if !pre && strings.Contains(p.PackageVersion, "-") {
				continue
			}
			items = append(items, packageVersionView{Id: packageID(p), PackageId: p.PackageId, FeedId: cuttle.BuiltinFeedID,
				Version: p.PackageVersion, Title: p.PackageId, Published: p.Published, SizeBytes: p.PackageSizeBytes,
				Links: map[string]string{"Self": "/api/" + DefaultSpaceID + "/packages/" + packageID(p)}})
		}
		return err
	})
	if err != nil {
		return err
	}
	if items == nil {
		items = []packageVersionView{}
	}
	return writePage(w, r, "PackageVersion", "/api/"+DefaultSpaceID+"/feeds/"+cuttle.BuiltinFeedID+"/packages/versions", items)
}

// handlePackageSearch lists the feed's package ids that contain term, each
// with its highest version.
func (s *Server) handlePackageSearch(w http.ResponseWriter, r *http.Request) error {
	if err := checkFeed(r.PathValue("id")); err != nil {
		return err
	}
	latest, err := s.latestPackages(r, r.URL.Query().Get("term"))
	if err != nil {
		return err
	}
	return writePage(w, r, "PackageDescription", "/api/"+DefaultSpaceID+"/feeds/"+cuttle.BuiltinFeedID+"/packages/search", latest)
}

// latestPackages returns each package whose id contains filter, at its
// highest version, in order of id.
func (s *Server) latestPackages(r *http.Request, filter string) ([]packageView, error) {
	out := []packageView{}
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		ps, err := resources.PackageVersions(r.Context(), tx, DefaultSpaceID, "")
		for i, p := range ps {
			if i > 0 && strings.EqualFold(ps[i-1].PackageId, p.PackageId) {
				continue // a lower version of the one before
			}
			if filter == "" || strings.Contains(strings.ToLower(p.PackageId), strings.ToLower(filter)) {
				out = append(out, viewPackage(p))
			}
		}
		return err
	})
	return out, err
}

// handlePackageList lists packages: with nuGetPackageId every version of
// that package, highest first; otherwise each package at its highest
// version (filter: ids that contain it).
func (s *Server) handlePackageList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	path := "/api/" + DefaultSpaceID + "/packages"
	if id := q.Get("nuGetPackageId"); id != "" {
		items := []packageView{}
		err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
			ps, err := resources.PackageVersions(r.Context(), tx, DefaultSpaceID, id)
			for _, p := range ps {
				items = append(items, viewPackage(p))
			}
			return err
		})
		if err != nil {
			return err
		}
		return writePage(w, r, "Package", path, items)
	}
	latest, err := s.latestPackages(r, q.Get("filter"))
	if err != nil {
		return err
	}
	return writePage(w, r, "Package", path, latest)
}

// packageOf finds the package version an Octopus id (packages-<id>.<version>)
// names; KindNotFound if none.
func (s *Server) packageOf(r *http.Request) (cuttle.Package, error) {
	id := r.PathValue("id")
	rest, ok := cutPrefixFold(id, "packages-")
	notFound := cuttle.Errorf(cuttle.KindNotFound, "There is no package %q in the built-in feed.", id)
	if !ok {
		return cuttle.Package{}, notFound
	}
	name, err := feed.ParseName(rest + ".zip") // the id is a file name without its extension
	if err != nil {
		return cuttle.Package{}, notFound
	}
	var p cuttle.Package
	err = s.store.Read(r.Context(), func(tx *collection.Tx) error {
		p, err = s.feed.Find(r.Context(), tx, DefaultSpaceID, name.PackageID, name.Version)
		return err
	})
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return cuttle.Package{}, notFound
	}
	return p, err
}

func (s *Server) handlePackageGet(w http.ResponseWriter, r *http.Request) error {
	p, err := s.packageOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewPackage(p))
	return nil
}

func (s *Server) handlePackageDownload(w http.ResponseWriter, r *http.Request) error {
	p, err := s.packageOf(r)
	if err != nil {
		return err
	}
	f, err := s.feed.Open(r.Context(), p)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": p.PackageId + "." + p.PackageVersion + p.FileExtension}))
	w.Header().Set("ETag", `"`+p.Hash+`"`)
	http.ServeContent(w, r, "", p.Published, f)
	return nil
}

func (s *Server) handlePackageDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := s.packageOf(r)
	if err != nil {
		return err
	}
	if err := s.feed.Delete(r.Context(), DefaultSpaceID, p.PackageId, p.PackageVersion); err != nil {
		return err
	}
	s.log.Info("deleted a package", "package", p.PackageId, "version", p.PackageVersion, "user", me(r).Username)
	w.WriteHeader(http.StatusOK)
	return nil
}

// handlePackageUpload takes a package file: a multipart/form-data body
// whose part "file" (or the first file part) carries it, streamed to
// shared storage. overwriteMode (or the older replace=true) says what to do
// when the version exists: 201 created or replaced, 200 ignored, 409.
func (s *Server) handlePackageUpload(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	mode, err := cuttle.ParseOverwriteMode(q.Get("overwriteMode"))
	if err != nil {
		return err
	}
	if q.Get("overwriteMode") == "" && strings.EqualFold(q.Get("replace"), "true") {
		mode = cuttle.OverwriteExisting
	}
	mr, err := multipartReader(r)
	if err != nil {
		return cuttle.Errorf(cuttle.KindInvalid, "A package upload is a multipart/form-data body with the file in a part named \"file\".")
	}
	part, err := filePart(mr)
	if err != nil {
		return err
	}
	defer part.Close()
	p, outcome, err := s.feed.Upload(r.Context(), DefaultSpaceID, rawFileName(part), mode, part)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if outcome == feed.Ignored {
		status = http.StatusOK
	} else {
		s.log.Info("stored a package", "package", p.PackageId, "version", p.PackageVersion, "bytes", p.PackageSizeBytes, "sha256", p.Hash, "user", me(r).Username)
	}
	writeJSON(w, status, viewPackage(p))
	return nil
}

// multipartReader reads a multipart/form-data body through a 1 MiB
// buffer: multipart's own is 4 KiB, a system call and a copy per 4 KiB of
// a file of gigabytes.
func multipartReader(r *http.Request) (*multipart.Reader, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("not multipart/form-data")
	}
	return multipart.NewReader(bufio.NewReaderSize(r.Body, 1<<20), params["boundary"]), nil
}

// filePart returns the part of the upload that carries the file: the
// first with a file name (the official clients name it "file").
func filePart(mr *multipart.Reader) (*multipart.Part, error) {
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "The upload has no file: send it in a multipart/form-data part named \"file\" with its file name.")
		}
		if err != nil {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "The upload is not a readable multipart/form-data body: %v.", err)
		}
		if rawFileName(part) != "" {
			return part, nil
		}
		part.Close()
	}
}

// rawFileName returns the file name a part's header gives, whole: unlike
// Part.FileName it keeps a path, so that a name with one is refused rather
// than read as its last element.
func rawFileName(part *multipart.Part) string {
	_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// cutPrefixFold is strings.CutPrefix ignoring case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

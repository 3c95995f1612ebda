package api

import (
	"mime"
	"net/http"
	"path"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// artifactRoutes serves the files tasks kept: lists (regarding a task),
// one, its content, and delete.
func (s *Server) artifactRoutes() {
	s.links["Artifacts"] = "/api/" + DefaultSpaceID + "/artifacts{/id}{?skip,take,regarding,ids,partialName,order}"
	for _, p := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+p+"/artifacts", user, s.handleArtifactList)
		s.handle("GET "+p+"/artifacts/{id}", user, s.handleArtifactGet)
		s.handle("GET "+p+"/artifacts/{id}/content", user, s.handleArtifactContent)
		s.handle("DELETE "+p+"/artifacts/{id}", user, s.handleArtifactDelete)
	}
}

// artifactView is an artifact as Octopus serves it.
type artifactView struct {
	cuttle.Artifact
	StorageKey string `json:"StorageKey,omitempty"` // kept from clients
}

func viewArtifact(a cuttle.Artifact) artifactView {
	self := "/api/" + DefaultSpaceID + "/artifacts/" + a.ID
	a.Links = map[string]string{"Self": self, "Content": self + "/content", "ServerTask": "/api/tasks/" + a.ServerTaskId}
	return artifactView{Artifact: a}
}

// handleArtifactList lists artifacts, newest first; regarding=ServerTasks-N
// keeps a task's.
func (s *Server) handleArtifactList(w http.ResponseWriter, r *http.Request) error {
	skip, take, err := pageParams(r)
	if err != nil {
		return err
	}
	q := collection.Query{Space: DefaultSpaceID, Skip: skip, Take: take, IDs: queryIDs(r)}
	if take == 0 {
		q.Take = -1 // an empty page, with the total
	}
	if regarding := r.URL.Query().Get("regarding"); regarding != "" {
		q.Where = map[string]any{"server_task_id": regarding}
	}
	var (
		items []artifactView
		total int
	)
	err = s.store.Read(r.Context(), func(tx *collection.Tx) error {
		as, n, err := resources.Artifacts.List(r.Context(), tx, q)
		for _, a := range as {
			items = append(items, viewArtifact(a))
		}
		total = n
		return err
	})
	if err != nil {
		return err
	}
	if take == 0 {
		items = nil
	}
	if items == nil {
		items = []artifactView{}
	}
	writeJSON(w, http.StatusOK, newPage("Artifact", "/api/"+DefaultSpaceID+"/artifacts", items, total, skip, take))
	return nil
}

func (s *Server) artifactOf(r *http.Request) (cuttle.Artifact, error) {
	var a cuttle.Artifact
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		var err error
		a, err = resources.Artifacts.Get(r.Context(), tx, r.PathValue("id"))
		return err
	})
	return a, err
}

func (s *Server) handleArtifactGet(w http.ResponseWriter, r *http.Request) error {
	a, err := s.artifactOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewArtifact(a))
	return nil
}

func (s *Server) handleArtifactContent(w http.ResponseWriter, r *http.Request) error {
	a, err := s.artifactOf(r)
	if err != nil {
		return err
	}
	f, err := s.feed.Files.Open(r.Context(), a.StorageKey)
	if err != nil {
		return cuttle.Errorf(cuttle.KindNotFound, "The file of the artifact %s is missing from shared storage.", a.ID)
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(a.Filename)}))
	http.ServeContent(w, r, "", a.Created, f)
	return nil
}

func (s *Server) handleArtifactDelete(w http.ResponseWriter, r *http.Request) error {
	a, err := s.artifactOf(r)
	if err != nil {
		return err
	}
	if err := s.store.Update(r.Context(), func(tx *collection.Tx) error { return resources.Artifacts.Delete(r.Context(), tx, a.ID) }); err != nil {
		return err
	}
	if err := s.feed.Files.Delete(r.Context(), a.StorageKey); err != nil {
		s.log.Warn("an artifact's file could not be deleted", "key", a.StorageKey, "err", err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

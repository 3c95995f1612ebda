package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveInterruptions serves a deployment's waits for a person: lists
// (?regarding=<deployment or task id>, ?pendingOnly=true), taking
// responsibility (PUT .../responsible) and the answer (POST .../submit),
// which resumes the waiting deployment on whichever node claims it.
func (s *Server) serveInterruptions() {
	interruptions := docs[cuttle.Interruption]{def: resources.Interruptions, path: "interruptions", link: "Interruptions",
		itemType: "Interruption", template: "{/id}{?skip,take,regarding,pendingOnly,ids}", readOnly: true,
		perms: perms{view: "InterruptionView"}, where: interruptionScope,
		links: func(i *cuttle.Interruption) map[string]string {
			self := spacePath("interruptions/" + i.ID)
			return map[string]string{"Submit": self + "/submit", "Responsible": self + "/responsible"}
		},
		present: func(r *http.Request, i *cuttle.Interruption) {
			i.HasResponsibility = i.ResponsibleUserId != "" && strings.EqualFold(i.ResponsibleUserId, me(r).ID)
			i.CanTakeResponsibility = i.IsPending && s.mayAnswer(r, i) == nil
		},
		query: func(r *http.Request, q *collection.Query) error {
			if q.Where == nil {
				q.Where = map[string]any{}
			}
			if v := r.URL.Query().Get("regarding"); v != "" {
				q.Where["related"] = v
			}
			if r.URL.Query().Get("pendingOnly") == "true" {
				q.Where["is_pending"] = true
			}
			return nil
		}}
	serveDocs(s, interruptions)
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		base := prefix + "/interruptions/{id}"
		s.handle("GET "+base+"/responsible", can("InterruptionView"), s.handleResponsible(interruptions))
		s.handle("PUT "+base+"/responsible", can("InterruptionSubmit"), s.handleTakeResponsibility(interruptions))
		s.handle("POST "+base+"/submit", can("InterruptionSubmit"), s.handleSubmit(interruptions))
	}
}

// mayAnswer returns KindForbidden unless the caller may take
// responsibility for i and answer it: they need InterruptionSubmit in its
// deployment's scope, and when it names responsible teams, to be a member
// of one of them.
func (s *Server) mayAnswer(r *http.Request, i *cuttle.Interruption) error {
	ctx, u := r.Context(), me(r)
	var member bool
	err := s.store.Read(ctx, func(tx *collection.Tx) error {
		at, err := interruptionScope(ctx, tx, i)
		if err != nil {
			return err
		}
		if err := allow(r, "InterruptionSubmit", at, i.ID); err != nil {
			return err
		}
		member = len(i.ResponsibleTeamIds) == 0
		for _, id := range i.ResponsibleTeamIds {
			t, err := resources.Teams.Get(ctx, tx, id)
			if cuttle.IsKind(err, cuttle.KindNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if slices.ContainsFunc(t.MemberUserIds, func(m string) bool { return strings.EqualFold(m, u.ID) }) {
				member = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !member {
		return cuttle.Errorf(cuttle.KindForbidden, "You are not a member of the teams responsible for this interruption (%s).", strings.Join(i.ResponsibleTeamIds, ", "))
	}
	return nil
}

// interruptionScope returns the scope of the deployment an interruption
// holds up.
func interruptionScope(ctx context.Context, tx *collection.Tx, i *cuttle.Interruption) (resources.Scope, error) {
	for _, id := range i.RelatedDocumentIds {
		if strings.HasPrefix(id, "Deployments-") {
			d, err := resources.Deployments.Get(ctx, tx, id)
			if cuttle.IsKind(err, cuttle.KindNotFound) {
				break
			}
			if err != nil {
				return resources.Scope{}, err
			}
			return resources.DeploymentScope(ctx, tx, &d)
		}
	}
	return resources.Scope{}, nil
}

// handleResponsible answers the user responsible for the interruption;
// 404 when nobody has taken responsibility.
func (s *Server) handleResponsible(d docs[cuttle.Interruption]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var u cuttle.User
		err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
			i, err := d.find(r.Context(), tx, DefaultSpaceID, r.PathValue("id"), false)
			if err != nil {
				return err
			}
			if i.ResponsibleUserId == "" {
				return cuttle.Errorf(cuttle.KindNotFound, "Nobody has taken responsibility for the interruption %s.", i.ID)
			}
			u, err = resources.Users.Get(r.Context(), tx, i.ResponsibleUserId)
			return err
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, userOut(u))
		return nil
	}
}

// handleTakeResponsibility makes the caller responsible for a pending
// interruption and answers the caller. KindForbidden if they may not
// answer it; KindConflict if it is answered already.
func (s *Server) handleTakeResponsibility(d docs[cuttle.Interruption]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		me := me(r)
		err := s.store.Update(r.Context(), func(tx *collection.Tx) error {
			i, err := d.find(r.Context(), tx, DefaultSpaceID, r.PathValue("id"), true)
			if err != nil {
				return err
			}
			if !i.IsPending {
				return cuttle.Errorf(cuttle.KindConflict, "The interruption %s has been answered already.", i.ID)
			}
			if err := s.mayAnswer(r, &i); err != nil {
				return err
			}
			i.ResponsibleUserId = me.ID
			stamp(r, &i.Resource)
			return resources.Interruptions.Update(r.Context(), tx, &i)
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, userOut(me))
		return nil
	}
}

// submitBody is an interruption's answer: a manual intervention's Result,
// or a guided failure's Guidance, with notes.
type submitBody struct {
	Notes        string
	Result       string
	Guidance     string
	Instructions string // sent back by the official client; ignored
}

// handleSubmit records the caller's answer to a pending interruption they
// took responsibility for, and resumes the deployment waiting on it, in
// one unit of work. KindInvalid without responsibility, or for an answer
// the form does not offer; KindConflict if it was answered already.
func (s *Server) handleSubmit(d docs[cuttle.Interruption]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b submitBody
		if err := decodeJSON(w, r, &b); err != nil {
			return err
		}
		me := me(r)
		var i cuttle.Interruption
		err := s.store.Update(r.Context(), func(tx *collection.Tx) error {
			var err error
			if i, err = d.find(r.Context(), tx, DefaultSpaceID, r.PathValue("id"), true); err != nil {
				return err
			}
			if !i.IsPending {
				return cuttle.Errorf(cuttle.KindConflict, "The interruption %s has been answered already.", i.ID)
			}
			if !strings.EqualFold(i.ResponsibleUserId, me.ID) {
				return cuttle.Errorf(cuttle.KindInvalid, "Take responsibility for the interruption %s before you answer it (PUT %s).", i.ID,
					spacePath("interruptions/"+i.ID+"/responsible"))
			}
			if err := s.mayAnswer(r, &i); err != nil {
				return err
			}
			element, answer := "Result", b.Result
			if i.Type == cuttle.InterruptionGuidedFailure {
				element, answer = "Guidance", b.Guidance
			}
			if !i.Form.Offers(element, answer) {
				return cuttle.Errorf(cuttle.KindInvalid, "%q is not an answer the interruption %s offers as its %s.", answer, i.ID, element)
			}
			i.Form.Values = map[string]string{"Notes": b.Notes, element: answer}
			i.IsPending, i.AnsweredBy = false, me.Username
			stamp(r, &i.Resource)
			if err := resources.Interruptions.Update(r.Context(), tx, &i); err != nil {
				return err
			}
			id, err := cuttle.ParseID(cuttle.TaskIDPrefix, i.TaskId)
			if err != nil {
				return err
			}
			if err := s.store.ResumeTask(r.Context(), tx, id); err != nil {
				return err
			}
			tx.Notify(store.ChannelTasks, i.TaskId)
			return nil
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d.out(r, &i))
		return nil
	}
}

// userOut is a user as the API answers one.
func userOut(u cuttle.User) cuttle.User {
	u.Links = map[string]string{"Self": "/api/users/" + u.ID}
	return u
}

package cli

import (
	"log/slog"

	"github.com/berthnet/berth/internal/events"
	"github.com/berthnet/berth/internal/image"
)

// journal is the event journal of the world's run root.
func (w *world) journal() *events.Journal { return events.Open(events.PathIn(w.runRoot)) }

// recordEvent appends ev to the journal; a failing write is a warning,
// never the operation's error.
func recordEvent(j *events.Journal, log *slog.Logger, ev events.Event) {
	if err := j.Append(ev); err != nil && log != nil {
		log.Warn("record event", "type", ev.Type, "action", ev.Action, "error", err)
	}
}

// networkEvent records action (create, remove) on a network.
func (w *world) networkEvent(action, id, name string) {
	recordEvent(w.journal(), w.log, events.Event{Type: events.TypeNetwork, Action: action, ID: id, Name: name})
}

// imageEvents records the image store's changes in the journal.
func imageEvents(j *events.Journal, log *slog.Logger) func(image.Event) {
	return func(e image.Event) {
		recordEvent(j, log, events.Event{Type: events.TypeImage, Action: e.Action, ID: e.ID, Name: e.Name})
	}
}

// Events is the journal GET /events reads.
func (b dockerBackend) Events() *events.Journal { return b.w.journal() }

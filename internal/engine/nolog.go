package engine

import "github.com/herd-project/herd/internal/event"

// Messages that replace the details of no_log resources. They say something
// happened without saying what, so a recap still adds up.
const (
	hiddenFailure = "failed (details hidden by no_log)"
	hiddenChange  = "changed (no_log)"
	hiddenRetry   = "attempt failed (details hidden by no_log), retrying"
	hiddenRefresh = "refreshed (no_log)"
)

// mask strips from ev everything a no_log resource might leak: diffs,
// command output, and any message that came from the resource rather than
// from the engine (msgSafe). keep is false for events that carry nothing
// but resource output, which are dropped.
func mask(ev event.Event, msgSafe bool) (_ event.Event, keep bool) {
	ev.Diff, ev.Stdout, ev.Stderr = "", "", ""
	if msgSafe {
		return ev, true
	}
	switch ev.Type {
	case event.Output, event.Log:
		return ev, false
	case event.Failed:
		ev.Msg = hiddenFailure
	case event.Changed:
		ev.Msg = hiddenChange
	case event.Retry:
		ev.Msg = hiddenRetry
	case event.Refresh:
		ev.Msg = hiddenRefresh
	default:
		ev.Msg = ""
	}
	return ev, true
}

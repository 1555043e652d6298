package report

// HopFigures are what the agent measured of a scenario's first live
// update, from its steps' values; a figure no step reported is -1.
type HopFigures struct {
	// BlocksBefore and BlocksAfter are the file's st_blocks (512-byte
	// units) at the first stage's preserve, before and after it.
	BlocksBefore, BlocksAfter int64
	// BlocksRetrieved is st_blocks at the second stage's verify, in
	// the next kernel.
	BlocksRetrieved int64
	// MigratedPages is how many pages migrated during the preserve
	// (pgmigrate_success).
	MigratedPages int64
}

// FirstHop reads HopFigures from a scenario's steps (ScenarioResult.Steps):
// the preserve steps of stage 0 and the verify steps of stage 1; where
// several report a figure, the last one counts.
func FirstHop(steps []StepResult) HopFigures {
	h := HopFigures{-1, -1, -1, -1}
	take := func(dst *int64, st StepResult, key string) {
		if v, ok := st.Values[key]; ok {
			*dst = v
		}
	}
	for _, st := range steps {
		if !st.Reported {
			continue
		}
		switch {
		case st.Op == "preserve" && st.Stage == 0:
			take(&h.BlocksBefore, st, "blocks_before")
			take(&h.BlocksAfter, st, "blocks_after")
			take(&h.MigratedPages, st, "pgmigrate_success")
		case st.Op == "verify" && st.Stage == 1:
			take(&h.BlocksRetrieved, st, "blocks")
		}
	}
	return h
}

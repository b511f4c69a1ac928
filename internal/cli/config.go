package cli

import (
	"fmt"
	"os"

	"github.com/keyburn/keyburn/internal/configfile"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/rules"
)

// configFileName is a scanned tree's own rules file (configfile.TreeName).
const configFileName = configfile.TreeName

// loadRules loads the rules as configfile.Load does, telling its messages
// through u.
func (c *common) loadRules(u *ui, dirHint string) (*configfile.Loaded, error) {
	return configfile.Load(c.config, dirHint, teller{u})
}

// teller tells configfile's messages through the ui.
type teller struct{ u *ui }

func (t teller) Debugf(format string, args ...any)   { t.u.debugf(format, args...) }
func (t teller) Warnf(format string, args ...any)    { t.u.errorf(format, args...) }
func (t teller) Problemf(format string, args ...any) { t.u.problem(format, args...) }

// readBaseline reads the baseline: the operator's (--baseline, or [scan]
// baseline in the operator's file) from anywhere, the tree's only from
// inside the tree. A tree's baseline that cannot be read is a problem of
// the tree: reported, and the scan goes on without it.
func (c *common) readBaseline(u *ui, l *configfile.Loaded) (finding.Baseline, error) {
	if c.baseline == "" {
		return nil, nil
	}
	fromTree := l.TreeBaseline != "" && c.baseline == l.TreeBaseline
	var data []byte
	var err error
	if fromTree {
		data, err = configfile.ReadTree(l.TreeRoot, c.baseline)
	} else {
		data, err = os.ReadFile(c.baseline)
	}
	if err != nil {
		if fromTree {
			u.problem("baseline %s, named by the scanned tree's %s: %v: scanned without it", c.baseline, configFileName, err)
			return nil, nil
		}
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	b, err := finding.ParseBaseline(c.baseline, data)
	if err != nil && fromTree {
		u.problem("%v: scanned without it", err)
		return nil, nil
	}
	return b, err
}

// notifyTargets reads the [notify] targets, from the operator's file only
// (a tree's [notify] never reaches the set: rules.TreeFile).
func (c *common) notifyTargets(set *rules.Set) ([]notify.Target, error) {
	if len(set.Notify) == 0 {
		return nil, nil
	}
	return notify.Targets(set.Notify, nil)
}

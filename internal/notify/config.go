package notify

import (
	"fmt"
	"os"

	"github.com/keyburn/keyburn/rules"
)

// Targets turns [[notify.target]] sections into targets, reading URLs and
// secrets named by environment variables. getenv is os.Getenv, or a test's.
func Targets(specs []rules.NotifyTarget, getenv func(string) string) ([]Target, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var out []Target
	for i, s := range specs {
		t := Target{Kind: s.Kind, URL: s.URL}
		if s.URLEnv != "" {
			if t.URL != "" {
				return nil, fmt.Errorf("notify target %d: url and url_env both set", i+1)
			}
			if t.URL = getenv(s.URLEnv); t.URL == "" {
				return nil, fmt.Errorf("notify target %d: url_env %s is not set", i+1, s.URLEnv)
			}
		}
		if s.SecretEnv != "" {
			if t.Secret = []byte(getenv(s.SecretEnv)); len(t.Secret) == 0 {
				return nil, fmt.Errorf("notify target %d: secret_env %s is not set", i+1, s.SecretEnv)
			}
		}
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("notify target %d: %w", i+1, err)
		}
		out = append(out, t)
	}
	return out, nil
}

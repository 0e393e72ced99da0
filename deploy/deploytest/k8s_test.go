package deploytest

import (
	"testing"
)

func TestOverlaysValid(t *testing.T) {
	root := k8sDir(t)
	for _, o := range overlays {
		t.Run(o.name, func(t *testing.T) {
			if err := validate(t, root, o); err != nil {
				t.Errorf("deploy/k8s/overlays/%s:\n%v", o.name, err)
			}
		})
	}
}

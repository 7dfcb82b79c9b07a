package images

import "github.com/distribution/reference"

// normalize turns a short image reference into the full name containerd
// stores: nginx → docker.io/library/nginx:latest.
func normalize(q string) (string, bool) {
	n, err := reference.ParseNormalizedNamed(q)
	if err != nil {
		return "", false
	}
	return reference.TagNameOnly(n).String(), true
}

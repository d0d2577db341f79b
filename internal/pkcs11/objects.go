package pkcs11

import (
	"fmt"

	cryptoki "github.com/miekg/pkcs11"
)

// FindObjects returns up to max objects matching tmpl. C_FindObjectsFinal
// runs even when C_FindObjects failed, so that the session is left
// without an active search (else the next search fails with
// CKR_OPERATION_ACTIVE).
func FindObjects(c *cryptoki.Ctx, sh cryptoki.SessionHandle, tmpl []*cryptoki.Attribute, max int) ([]cryptoki.ObjectHandle, error) {
	if err := c.FindObjectsInit(sh, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	objs, _, err := c.FindObjects(sh, max)
	if ferr := c.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("C_FindObjects: %w", err)
	}
	return objs, nil
}

package visualize

import (
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// Bounds on what is rendered. A schema-valid invoice never reaches them; they
// keep an invoice rendered without the schema (or a schema gap) from costing
// more than a valid one could.
const (
	// MaxFieldRunes is the longest text the FA(3) schema allows in any
	// element (TZnakowy512); longer text is cut there, marked with "…".
	MaxFieldRunes = 512
	// MaxListEntries is the largest maxOccurs of a repeated element the
	// renderer draws (FaWiersz, DodatkowyOpis, ZamowienieWiersz: 10,000);
	// an invoice with a longer list is refused.
	MaxListEntries = 10000
)

// capInvoice cuts every string of inv to MaxFieldRunes and refuses lists
// longer than MaxListEntries. It walks the model once: linear in its size.
func capInvoice(inv *fa3.Invoice) error {
	return capValue(reflect.ValueOf(inv).Elem(), "Faktura")
}

func capValue(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); len(s) > MaxFieldRunes && utf8.RuneCountInString(s) > MaxFieldRunes {
			v.SetString(cutRunes(s, MaxFieldRunes))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			return capValue(v.Elem(), path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			if err := capValue(v.Field(i), path+"/"+t.Field(i).Name); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil
		}
		if v.Len() > MaxListEntries {
			return fmt.Errorf("%w: %s has %d entries, the schema allows at most %d", ErrInvalidInvoice, path, v.Len(), MaxListEntries)
		}
		for i := range v.Len() {
			if err := capValue(v.Index(i), path); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutRunes is s cut to n runes, the last replaced by an ellipsis.
func cutRunes(s string, n int) string {
	i := 0
	for k := 0; k < n-1; k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

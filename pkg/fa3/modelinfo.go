package fa3

import (
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"
)

// modelInfo describes how one struct of the model (model.go) is filled from
// XML, read once from its xml struct tags so that model.go stays the only
// description of the model. It supports exactly the tag forms the model
// uses, with encoding/xml's meaning: elements by local name in any
// namespace, ",attr" by local name, ",chardata", "omitempty" (which only
// affects marshalling) and the root's XMLName. Anything else panics when the
// package is initialised, so a model change that needs more cannot go
// unnoticed.
type modelInfo struct {
	typ      reflect.Type
	elems    map[string]modelField // by element local name
	attrs    map[string]int        // field index by attribute local name
	chardata int                   // field index of ",chardata", -1 if none
}

type fieldKind uint8

const (
	kindString  fieldKind = iota // string: the element's text
	kindStrings                  // []string: one entry per element
	kindStruct                   // struct
	kindPtr                      // *struct: allocated on first occurrence
	kindSlice                    // []struct: one entry per element
)

type modelField struct {
	index int
	kind  fieldKind
	elem  *modelInfo // the struct, for kindStruct, kindPtr and kindSlice
}

// invoiceInfo is the description of Invoice; it is never written after
// package initialisation.
var invoiceInfo = newModelInfo(reflect.TypeFor[Invoice](), map[reflect.Type]*modelInfo{})

func newModelInfo(t reflect.Type, done map[reflect.Type]*modelInfo) *modelInfo {
	if mi, ok := done[t]; ok {
		return mi
	}
	mi := &modelInfo{typ: t, elems: map[string]modelField{}, attrs: map[string]int{}, chardata: -1}
	done[t] = mi
	stringType := reflect.TypeFor[string]()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("xml")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if f.Name == "XMLName" {
			if f.Type != reflect.TypeFor[xml.Name]() || t != reflect.TypeFor[Invoice]() {
				panic(fmt.Sprintf("fa3: %s.XMLName: only Invoice may name its element", t.Name()))
			}
			continue // the root's name is checked and set by the decoder
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if strings.ContainsAny(name, " >") {
			panic(fmt.Sprintf("fa3: %s.%s: namespaces and paths in xml tags are not supported", t.Name(), f.Name))
		}
		mode := ""
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "", "omitempty":
			case "attr", "chardata":
				mode = o
			default:
				panic(fmt.Sprintf("fa3: %s.%s: xml tag option %q is not supported", t.Name(), f.Name, o))
			}
		}
		if mode != "" {
			if f.Type != stringType {
				panic(fmt.Sprintf("fa3: %s.%s: ,%s fields must be strings", t.Name(), f.Name, mode))
			}
			if mode == "attr" {
				if _, dup := mi.attrs[name]; !dup {
					mi.attrs[name] = i
				}
			} else if mi.chardata < 0 {
				mi.chardata = i
			}
			continue
		}
		mf := modelField{index: i}
		switch ft := f.Type; {
		case ft == stringType:
			mf.kind = kindString
		case ft.Kind() == reflect.Slice && ft.Elem() == stringType:
			mf.kind = kindStrings
		case ft.Kind() == reflect.Struct:
			mf.kind, mf.elem = kindStruct, newModelInfo(ft, done)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			mf.kind, mf.elem = kindPtr, newModelInfo(ft.Elem(), done)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			mf.kind, mf.elem = kindSlice, newModelInfo(ft.Elem(), done)
		default:
			panic(fmt.Sprintf("fa3: %s.%s: field type %s is not supported", t.Name(), f.Name, ft))
		}
		if _, dup := mi.elems[name]; !dup { // encoding/xml fills the first field of a name
			mi.elems[name] = mf
		}
	}
	return mi
}

package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// bind fills the struct that dst points to from f, following each field's tags, and records an
// error per bad field in f. The same tags feed the OpenAPI document:
//
//	json:"name"            the body field
//	validate:"required"    the field must be present and, for strings, not blank
//	maxlen:"1000"          the most characters a string may have
//	min:"1" max:"100"      the range of an integer
//	enum:"A,B"             the values a string may take
//	doc:"..."              a description for the document only
func bind(f *fields, dst any) {
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if !f.has(name) {
			if sf.Tag.Get("validate") == "required" {
				f.fail(name, "This field is required.")
			}
			continue
		}
		bindField(f, name, sf, v.Field(i))
	}
}

func bindField(f *fields, name string, sf reflect.StructField, dst reflect.Value) {
	target := dst
	if dst.Kind() == reflect.Pointer {
		target = reflect.New(dst.Type().Elem()).Elem()
	}
	ok := false
	switch target.Kind() {
	case reflect.String:
		ok = bindString(f, name, sf, target)
	case reflect.Int, reflect.Int64:
		ok = bindInt(f, name, sf, target)
	case reflect.Bool:
		ok = bindBool(f, name, target)
	case reflect.Slice:
		ok = bindList(f, name, target)
	case reflect.Map:
		ok = bindObject(f, name, target)
	default:
		panic(fmt.Sprintf("bind: field %s has unsupported kind %s", sf.Name, target.Kind()))
	}
	if ok && dst.Kind() == reflect.Pointer {
		p := reflect.New(dst.Type().Elem())
		p.Elem().Set(target)
		dst.Set(p)
	}
}

func bindString(f *fields, name string, sf reflect.StructField, dst reflect.Value) bool {
	maxLen, _ := strconv.Atoi(sf.Tag.Get("maxlen"))
	var s string
	var ok bool
	if enum := sf.Tag.Get("enum"); enum != "" {
		s, ok = f.choice(name, strings.Split(enum, ",")...)
	} else {
		s, ok = f.str(name, maxLen)
	}
	if ok && sf.Tag.Get("validate") == "required" && strings.TrimSpace(s) == "" {
		f.fail(name, "This field may not be blank.")
		return false
	}
	if ok {
		dst.SetString(s)
	}
	return ok
}

func bindInt(f *fields, name string, sf reflect.StructField, dst reflect.Value) bool {
	lo, hi := int64(-1<<62), int64(1<<62)
	if v, err := strconv.ParseInt(sf.Tag.Get("min"), 10, 64); err == nil {
		lo = v
	}
	if v, err := strconv.ParseInt(sf.Tag.Get("max"), 10, 64); err == nil {
		hi = v
	}
	n, ok := f.integer(name, lo, hi)
	if ok {
		dst.SetInt(n)
	}
	return ok
}

func bindBool(f *fields, name string, dst reflect.Value) bool {
	switch v := f.values[name].(type) {
	case bool:
		dst.SetBool(v)
		return true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err == nil {
			dst.SetBool(b)
			return true
		}
	}
	f.fail(name, "Must be a valid boolean.")
	return false
}

// bindList binds a list of objects, or a list of strings for []string fields.
func bindList(f *fields, name string, dst reflect.Value) bool {
	elem := dst.Type().Elem()
	if elem.Kind() == reflect.String {
		return bindStrings(f, name, dst)
	}
	objects := f.objects(name)
	if _, failed := f.errs[name]; failed {
		return false
	}
	out := reflect.MakeSlice(dst.Type(), 0, len(objects))
	ok := true
	for i, obj := range objects {
		item := &fields{values: obj, errs: map[string][]string{}}
		v := reflect.New(elem)
		bind(item, v.Interface())
		for _, key := range sortedKeys(item.errs) {
			for _, msg := range item.errs[key] {
				f.fail(name, fmt.Sprintf("Item %d, %s: %s", i, key, msg))
			}
			ok = false
		}
		out = reflect.Append(out, v.Elem())
	}
	dst.Set(out)
	return ok
}

func bindStrings(f *fields, name string, dst reflect.Value) bool {
	var list []any
	switch v := f.values[name].(type) {
	case []any:
		list = v
	case string:
		list = []any{v}
	default:
		f.fail(name, "Expected a list of strings.")
		return false
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			f.fail(name, fmt.Sprintf("Item %d is not a string.", i))
			return false
		}
		out = append(out, s)
	}
	dst.Set(reflect.ValueOf(out))
	return true
}

// bindObject binds a JSON object. Form-encoded bodies carry it as a JSON-encoded string.
func bindObject(f *fields, name string, dst reflect.Value) bool {
	obj, isObj := f.values[name].(map[string]any)
	if s, isString := f.values[name].(string); isString {
		isObj = json.Unmarshal([]byte(s), &obj) == nil && obj != nil
	}
	if !isObj {
		f.fail(name, "Must be a JSON object.")
		return false
	}
	dst.Set(reflect.ValueOf(obj))
	return true
}

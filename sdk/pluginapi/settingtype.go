package pluginapi

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// SettingTypeSummary describes a setting whose value has the wrong type, from the error that
// json.Unmarshal returned for it, for ConfigureResponse.AddError. The settings come from the
// server's HCL configuration, so it names types as HCL does: "must be a whole number, not a
// string". A number written as a string, such as an env() call, gets a hint to convert it.
func SettingTypeSummary(err *json.UnmarshalTypeError) string {
	want := typeName(err.Type)
	got, literal, _ := strings.Cut(err.Value, " ")
	switch {
	case got == "number" && literal != "" && want == "whole number":
		if f, parseErr := strconv.ParseFloat(literal, 64); parseErr == nil && math.Trunc(f) == f {
			return fmt.Sprintf("%s is out of range for this setting", literal)
		}
		return fmt.Sprintf("must be a whole number, not %s", literal)
	case got == "string" && (want == "whole number" || want == "number"):
		return fmt.Sprintf("must be a %s, not a string: write it without quotes, or convert env(...) with tonumber(env(...))", want)
	case got == "string" && want == "bool":
		return "must be true or false, not a string: write it without quotes, or convert env(...) with tobool(env(...))"
	case want == "string" && (got == "number" || got == "bool"):
		return fmt.Sprintf("must be a string, not %s: write it in quotes", article(valueName(got)))
	}
	return fmt.Sprintf("must be %s, not %s", article(want), article(valueName(got)))
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "list"
	}
	return "object"
}

// valueName names a JSON value kind, as json.UnmarshalTypeError gives it, in HCL's terms.
func valueName(kind string) string {
	switch kind {
	case "array":
		return "list"
	case "bool":
		return "bool"
	}
	return kind
}

func article(name string) string {
	switch name {
	case "bool":
		return "true or false"
	case "object":
		return "an object"
	}
	return "a " + name
}

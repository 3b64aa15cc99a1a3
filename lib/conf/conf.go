// Package conf fills a service's typed configuration struct from environment
// variables once, at start-up, so no code below main reads the environment.
//
// Fields carry tags: `env:"NAME"` names the variable, `default:"..."` gives the
// value when it is unset, and `secret:"true"` masks the value in String. A
// nested struct field is walked too; its `prefix:"P_"` tag is put before the
// names inside it, so one settings type can serve several dependencies.
// Supported kinds: string, bool, int, uint32, float64 and time.Duration.
package conf

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Parse sets each tagged field of the struct cfg points to from lookup (use
// os.LookupEnv in main). All bad values are reported together.
func Parse(cfg any, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("conf: Parse needs a pointer to a struct")
	}
	var errs []error
	walk(v.Elem(), "", func(name string, f reflect.StructField, fv reflect.Value) {
		raw, ok := lookup(name)
		if !ok {
			raw, ok = f.Tag.Lookup("default")
		}
		if !ok {
			return
		}
		if err := set(fv, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, raw, err))
		}
	})
	return errors.Join(errs...)
}

// String renders cfg as NAME=value pairs for a start-up log line, masking secrets.
func String(cfg any) string {
	var parts []string
	walk(reflect.ValueOf(cfg).Elem(), "", func(name string, f reflect.StructField, fv reflect.Value) {
		val := fmt.Sprint(fv.Interface())
		if f.Tag.Get("secret") == "true" && val != "" {
			val = "******"
		}
		parts = append(parts, name+"="+val)
	})
	return strings.Join(parts, " ")
}

// walk calls fn with the full variable name of every field with an env tag,
// descending into nested structs.
func walk(v reflect.Value, prefix string, fn func(string, reflect.StructField, reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Tag.Get("env") == "" {
			if fv.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(fv, prefix+f.Tag.Get("prefix"), fn)
			}
			continue
		}
		fn(prefix+f.Tag.Get("env"), f, fv)
	}
}

func set(fv reflect.Value, raw string) error {
	if fv.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return errors.New("not a duration (e.g. 500ms, 5s)")
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean")
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return errors.New("not an integer")
		}
		fv.SetInt(n)
	case reflect.Uint32:
		n, err := strconv.ParseUint(raw, 10, 32)
		if err != nil {
			return errors.New("not a non-negative integer")
		}
		fv.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		fv.SetFloat(x)
	default:
		return fmt.Errorf("unsupported field kind %s", fv.Kind())
	}
	return nil
}

package api

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// parseIngestBody reads the top level of an ingest body without decoding the records. Their
// array is returned as a slice of b. Its elements are checked as they are turned into COPY
// rows (store.IngestArray), and by Postgres when it stores them as json. Every record byte is
// thus scanned twice, where a json.Decoder followed by the encoding would scan it three
// times. Keys match exactly; a key given twice keeps its last value. Values of other keys
// are checked as JSON and ignored.
func parseIngestBody(b []byte) (ingestBody, error) {
	var body ingestBody
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return body, fmt.Errorf("expected a JSON object")
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return body, fmt.Errorf("expected a key at byte %d", i)
			}
			end, err := skipJSONValue(b, i)
			if err != nil {
				return body, err
			}
			var key string
			if err := json.Unmarshal(b[i:end], &key); err != nil {
				return body, fmt.Errorf("key at byte %d: %v", i, err)
			}
			i = skipJSONSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return body, fmt.Errorf("expected ':' after key %q", key)
			}
			i = skipJSONSpace(b, i+1)
			end, err = skipJSONValue(b, i)
			if err != nil {
				return body, fmt.Errorf("%s: %w", key, err)
			}
			value := b[i:end]
			switch key {
			case "type", "batch_id":
				target := &body.Type
				if key == "batch_id" {
					target = &body.BatchID
				}
				if err := json.Unmarshal(value, target); err != nil {
					return body, fmt.Errorf("%s must be a string", key)
				}
			case "records":
				// Only the last records array is stored, and the store checks it. An earlier
				// one must still be valid JSON, as encoding/json requires.
				if body.Records != nil && !json.Valid(body.Records) {
					return body, fmt.Errorf("records: the first of two values is not valid JSON")
				}
				body.Records = value
			default:
				if !json.Valid(value) {
					return body, fmt.Errorf("%s: the value is not valid JSON", key)
				}
			}
			i = skipJSONSpace(b, end)
			if i < len(b) && b[i] == ',' {
				i = skipJSONSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return body, fmt.Errorf("expected ',' or '}' at byte %d", i)
		}
	}
	if i = skipJSONSpace(b, i); i != len(b) {
		return body, fmt.Errorf("unexpected data after the object at byte %d", i)
	}
	return body, nil
}

// skipJSONValue returns the index just after the JSON value that starts at b[i]. It follows
// strings and brackets to find the end, and does not check the grammar inside a container.
func skipJSONValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, fmt.Errorf("expected a value at byte %d", i)
	}
	switch b[i] {
	case '"':
		return skipJSONString(b, i)
	case '{', '[':
		start, depth := i, 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipJSONString(b, i)
				if err != nil {
					return end, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return i, fmt.Errorf("the value at byte %d is not closed", start)
	default:
		start := i
		for i < len(b) && !isJSONDelimiter(b[i]) {
			i++
		}
		if i == start {
			return i, fmt.Errorf("expected a value at byte %d", i)
		}
		return i, nil
	}
}

// skipJSONString returns the index just after the string that starts at b[i]. It jumps from
// quote to quote with bytes.IndexByte. A quote ends the string unless an odd number of
// backslashes comes right before it.
func skipJSONString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			break
		}
		end := j + q
		backslashes := 0
		for k := end - 1; k > i && b[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return end + 1, nil
		}
		j = end + 1
	}
	return len(b), fmt.Errorf("the string at byte %d is not closed", i)
}

func isJSONDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

package verify

import (
	"bytes"
	"context"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// maxErrorBody bounds how much of an error response is read to reshape it.
const maxErrorBody = 64 << 10

// addErrorReshape adds a deserialize step that accepts STS errors wrapped the
// way IAM wraps them (<ErrorResponse><Errors><Error>…), as some emulators and
// proxies send them, by unwrapping them to STS's own shape
// (<ErrorResponse><Error>…) before the SDK parses them. Without it the SDK
// sees "UnknownError" and an unknown key would be reported as an error rather
// than invalid. Real STS errors pass unchanged.
func addErrorReshape(st *middleware.Stack) error {
	return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("keyburnErrorReshape",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if r, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil {
				reshapeResponse(r)
			}
			return out, md, err
		}), middleware.After)
}

// reshapeResponse rewrites resp's error body in place, if it has IAM's shape.
func reshapeResponse(resp *smithyhttp.Response) {
	if resp == nil || resp.StatusCode < 400 || resp.Body == nil {
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	if err != nil {
		resp.Body = io.NopCloser(bytes.NewReader(nil))
		return
	}
	if bytes.Contains(body, []byte("<Errors><Error>")) {
		body = bytes.Replace(body, []byte("<Errors><Error>"), []byte("<Error>"), 1)
		body = bytes.Replace(body, []byte("</Error></Errors>"), []byte("</Error>"), 1)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

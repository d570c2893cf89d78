// A todo MCP server with the official MCP Go SDK, protected by Scalekit. Run: go build -o .bin/server . && .bin/server
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// region tools
type todoStore struct {
	mu    sync.Mutex
	items map[string][]string // per user (the token's sub); a real server keeps them in a database
}

type addTodoArgs struct {
	Title string `json:"title" jsonschema:"the todo"`
}

func newServer(todos *todoStore) *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "Todo MCP server", Version: "1.0.0"}, nil)

	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Who is calling: the subject, client and scopes of the access token"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			info := caller(req)
			return nil, map[string]any{"sub": info.UserID, "client_id": info.Extra["client_id"], "scope": strings.Join(info.Scopes, " ")}, nil
		})

	mcp.AddTool(server, &mcp.Tool{Name: "add_todo", Description: "Add a todo for the caller (needs the todo:write scope)"},
		func(ctx context.Context, req *mcp.CallToolRequest, args addTodoArgs) (*mcp.CallToolResult, any, error) {
			owner := caller(req).UserID
			todos.mu.Lock()
			todos.items[owner] = append(todos.items[owner], args.Title)
			list := slices.Clone(todos.items[owner])
			todos.mu.Unlock()
			if err := sendToTodoAPI(ctx, map[string]string{"owner": owner, "title": args.Title}); err != nil {
				return nil, nil, err
			}
			return nil, map[string]any{"owner": owner, "todos": list}, nil
		})

	server.AddReceivingMiddleware(auditToolCalls)
	return server
}

// caller is the token the bearer check verified (empty if a call ever arrives without one).
func caller(req *mcp.CallToolRequest) *auth.TokenInfo {
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		return req.Extra.TokenInfo
	}
	return &auth.TokenInfo{Extra: map[string]any{}}
}

// auditToolCalls writes the audit line of every tool call that reached a tool.
func auditToolCalls(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		result, err := next(ctx, method, req)
		if call, ok := req.(*mcp.CallToolRequest); ok {
			outcome := "ok"
			if res, _ := result.(*mcp.CallToolResult); err != nil || res == nil || res.IsError {
				outcome = "error"
			}
			audit(call.Extra.TokenInfo, call.Params.Name, outcome)
		}
		return result, err
	}
}

// endregion tools

// region downstream
// sendToTodoAPI tells the downstream todo API, with that API's own credential. The MCP access token
// is never forwarded: it was issued for this server only (audience), and passing it on is forbidden.
func sendToTodoAPI(ctx context.Context, todo map[string]string) error {
	url := os.Getenv("TODO_API_URL")
	if url == "" {
		return nil
	}
	body, _ := json.Marshal(todo)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if key := os.Getenv("TODO_API_KEY"); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the todo API answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// endregion downstream

// region main
func main() {
	cfg := loadConfig()
	server := newServer(&todoStore{items: map[string][]string{}})
	mux := http.NewServeMux()

	// Metadata at the path-suffixed URL (RFC 9728) and at the root, where Scalekit's docs look.
	metadata := auth.ProtectedResourceMetadataHandler(protectedResourceMetadata(cfg))
	mux.Handle("/.well-known/oauth-protected-resource/mcp", metadata)
	mux.Handle("/.well-known/oauth-protected-resource", metadata)

	// Sessions: the SDK refuses a session id sent with another user's token (TokenInfo.UserID).
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	mux.Handle("/mcp", protect(cfg, newVerifier(cfg), mcpHandler))

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })

	log.Printf("MCP server on http://localhost:%s/mcp", cfg.Port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+cfg.Port, mux))
}

// endregion main

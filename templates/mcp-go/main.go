// An MCP server with the official Go SDK: two tools, each needing its own Scalekit scope.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// region tools
type todoList struct {
	mu    sync.Mutex
	items map[string][]string // per user (the token's `sub`); in memory for the template
}

type addTodoArgs struct {
	Title string `json:"title" jsonschema:"the to-do item"`
}

func newServer(todos *todoList) *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "todo", Version: "1.0.0"}, nil)

	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Who is calling: the user and client from the access token"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			info := req.Extra.TokenInfo
			return text(map[string]any{"sub": info.UserID, "client_id": info.Extra["client_id"], "scopes": info.Scopes}), nil, nil
		})

	mcp.AddTool(server, &mcp.Tool{Name: "add_todo", Description: "Add an item to the caller's to-do list"},
		func(ctx context.Context, req *mcp.CallToolRequest, args addTodoArgs) (*mcp.CallToolResult, any, error) {
			user := req.Extra.TokenInfo.UserID
			todos.mu.Lock()
			todos.items[user] = append(todos.items[user], args.Title)
			count := len(todos.items[user])
			todos.mu.Unlock()
			return text(map[string]any{"added": args.Title, "count": count}), nil, nil
		})

	server.AddReceivingMiddleware(auditToolCalls)
	return server
}

func text(value any) *mcp.CallToolResult {
	data, _ := json.Marshal(value)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(data)}}}
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

// region main
func main() {
	cfg := loadConfig()
	server := newServer(&todoList{items: map[string][]string{}})
	mux := http.NewServeMux()

	// Metadata at the path-suffixed URL (RFC 9728) and at the root, where Scalekit's docs look.
	metadata := auth.ProtectedResourceMetadataHandler(protectedResourceMetadata(cfg))
	mux.Handle("GET /.well-known/oauth-protected-resource/mcp", metadata)
	mux.Handle("GET /.well-known/oauth-protected-resource", metadata)

	// Sessions: the SDK refuses a session id sent with another user's token (TokenInfo.UserID).
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	mux.Handle("/mcp", protect(cfg, newVerifier(cfg), mcpHandler))

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"ok":true}`)) })

	log.Printf("MCP server on http://localhost:%s/mcp", cfg.Port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+cfg.Port, mux))
}

// endregion main

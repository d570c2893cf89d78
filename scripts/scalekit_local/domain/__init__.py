"""Operations that the HTTP endpoints and the gRPC services both call, and the Context they run in."""

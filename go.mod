module github.com/gosoccr/gosoccr

go 1.26.0

require golang.org/x/sys v0.49.0

require (
	github.com/checkpoint-restore/go-criu/v7 v7.2.0 // indirect
	google.golang.org/protobuf v1.34.2 // indirect
)

module github.com/gosoccr/gosoccr

go 1.26.0

require golang.org/x/sys v0.49.0

require (
	github.com/checkpoint-restore/go-criu/v7 v7.2.0 // indirect
	github.com/google/go-cmp v0.6.0 // indirect
	github.com/google/nftables v0.3.0 // indirect
	github.com/mdlayher/netlink v1.7.3-0.20250113171957-fbb4dce95f42 // indirect
	github.com/mdlayher/socket v0.5.0 // indirect
	golang.org/x/net v0.33.0 // indirect
	golang.org/x/sync v0.6.0 // indirect
	google.golang.org/protobuf v1.34.2 // indirect
)

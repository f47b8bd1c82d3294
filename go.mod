module github.com/mycelsync/mycel

go 1.26.0

require (
	github.com/transparency-dev/merkle v0.0.2
	google.golang.org/protobuf v1.36.11
)

module github.com/Warp-net/warpnet-consensus/clients/go

go 1.19

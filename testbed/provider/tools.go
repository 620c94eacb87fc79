//go:build tools

// Package tools keeps the provider daemon's main package in this module's build list (go mod tidy).
package tools

import _ "github.com/cosmos/interchain-security/v7/cmd/interchain-security-pd"

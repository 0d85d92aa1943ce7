package actions

import "fmt"

var sprintf = fmt.Sprintf

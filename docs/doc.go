// Package docs holds drum's user documentation (Markdown). Its test keeps
// moving-from-drum.md in step with the settings and flags the code defines.
package docs

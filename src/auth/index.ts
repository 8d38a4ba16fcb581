// Placeholder: this layer arrives with its own issue (see DESIGN.md).
export {};

module patch405

go 1.24

package cli

import (
	"github.com/spf13/cobra"
)

func renameCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NAME",
		Short: "Rename an existing container",
		Long:  "Give a container a new name; a running container's DNS name changes at once.",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			_, err = e.Rename(args[0], args[1])
			return notFound(err, 125)
		},
	}
}
